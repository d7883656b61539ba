# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""ament_python package `sdm_policy_ros`: the ROS-free core library and the ROS 2 layer.

`pip install -e .` gives `sdm_policy_core` and the `sdm` CLI on a machine without ROS;
`colcon build` installs the same package as a ROS 2 package (executables under
lib/sdm_policy_ros, launch and config files under share/sdm_policy_ros).
"""

from distutils.command.build_scripts import build_scripts  # setuptools provides distutils
from glob import glob
from os.path import dirname, isfile

from setuptools import find_packages, setup
from setuptools.command.develop import develop

PACKAGE = "sdm_policy_ros"
# The ROS executables: bin/<name>, a script that imports sdm_policy_ros.executables directly.
# As console_scripts, setuptools' wrapper would first import importlib.metadata (which the
# nodes never need otherwise: ~2 MB resident) and search the installed distributions for the
# entry point, before the executable's signal handlers are installed (a SIGINT there: a
# KeyboardInterrupt traceback).
EXECUTABLES = (
    "policy_node",
    "sim_bridge_node",
    "expert_teleop_node",
    "bag_recorder",
    "sim_eval_driver",
)


def _tree(folder: str) -> list[tuple[str, list[str]]]:
    """data_files entries that install `folder` (recursively) under share/<package>/."""
    entries: dict[str, list[str]] = {}
    for path in sorted(glob(f"{folder}/**/*", recursive=True)):
        if "__pycache__" in path or not isfile(path):
            continue
        entries.setdefault(f"share/{PACKAGE}/{dirname(path)}", []).append(path)
    return sorted(entries.items())


class BuildScripts(build_scripts):
    """Install the scripts with this build's interpreter in their shebang.

    For `setup.py install` (colcon without --symlink-install). setuptools >= 78 writes
    "#!python" for an installer to replace (pypa/setuptools#4934), which `setup.py install`
    never does; a wheel build keeps it (its executable is "python", and pip replaces it).
    """

    def copy_scripts(self):
        outfiles, updated = super().copy_scripts()
        for path in updated:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if text.startswith("#!python\n"):
                with open(path, "w", encoding="utf-8") as f:
                    f.write(f"#!{self.executable}\n" + text.split("\n", 1)[1])
        return outfiles, updated


class Develop(develop):
    """Install each script as itself with its shebang rewritten.

    For `setup.py develop` (colcon --symlink-install): the script itself, not setuptools'
    development wrapper (which imports pkg_resources and reads every installed distribution
    before running the script).
    """

    def install_script(self, dist, script_name, script_text, dev_path=None):
        from setuptools.command.easy_install import ScriptWriter

        body = script_text.split("\n", 1)[1] if script_text.startswith("#!") else script_text
        self.write_script(script_name, (ScriptWriter.get_header(script_text) + body).encode(), "b")


setup(
    name=PACKAGE,
    version="0.1.0",
    description="SDM Policy: one-step distilled diffusion visuomotor policies as a ROS 2 suite",
    license="MIT",  # as package.xml; the text is LICENSE
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
    scripts=[f"bin/{name}" for name in EXECUTABLES],
    entry_points={"console_scripts": ["sdm = sdm_policy_core.cli:main"]},
    cmdclass={"build_scripts": BuildScripts, "develop": Develop},
)
