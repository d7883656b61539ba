"""ament_python package `sdm_policy_ros`: the ROS-free core library and the ROS 2 layer.

`pip install -e .` gives `sdm_policy_core` and the `sdm` CLI on a machine without ROS;
`colcon build` installs the same package as a ROS 2 package (executables under
lib/sdm_policy_ros, launch and config files under share/sdm_policy_ros).
"""

from glob import glob
from os.path import dirname, isfile

from setuptools import find_packages, setup

PACKAGE = "sdm_policy_ros"


def _tree(folder: str) -> list[tuple[str, list[str]]]:
    """data_files entries that install `folder` (recursively) under share/<package>/."""
    entries: dict[str, list[str]] = {}
    for path in sorted(glob(f"{folder}/**/*", recursive=True)):
        if "__pycache__" in path or not isfile(path):
            continue
        entries.setdefault(f"share/{PACKAGE}/{dirname(path)}", []).append(path)
    return sorted(entries.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    description="SDM Policy: one-step distilled diffusion visuomotor policies as a ROS 2 suite",
    python_requires=">=3.10",
    packages=find_packages(
        include=["sdm_policy_core", "sdm_policy_core.*", "sdm_policy_ros", "sdm_policy_ros.*"]
    ),
    package_data={"sdm_policy_core": ["presets/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *_tree("launch"),
        *_tree("config"),
    ],
    # The core's runtime needs. torch is not pinned here: install the build for your machine
    # first (CPU: torch==2.13.0, see requirements/core.txt); a range it satisfies installs nothing.
    install_requires=[
        "torch>=2.3",
        "numpy>=1.24",
        "zarr>=2.18",
        "diffusers>=0.30",
        "safetensors>=0.4",
        "einops>=0.8",
        "pyyaml>=6.0",
        "tqdm>=4.66",
        "matplotlib>=3.8",
        "psutil>=5.9",
    ],
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "sdm = sdm_policy_core.cli:main",
            "policy_node = sdm_policy_ros.executables:policy_node",
            "sim_bridge_node = sdm_policy_ros.executables:sim_bridge_node",
            "expert_teleop_node = sdm_policy_ros.executables:expert_teleop_node",
            "bag_recorder = sdm_policy_ros.executables:bag_recorder",
            "sim_eval_driver = sdm_policy_ros.executables:sim_eval_driver",
        ],
    },
)
