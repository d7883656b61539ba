# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""ROS 2 package hygiene, as the ROS examples check it in their test suites.

ROS 2 package hygiene, as the ROS examples check it in their test suites: the manifests are
valid REP 149 (format 3) package.xml files, every ROS package the code and launch files import is
declared, and the interfaces declare the packages their fields come from. (Lint and format are
`ruff` in scripts/test.sh.) Needs no ROS: catkin_pkg parses the manifests as colcon does.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from catkin_pkg.package import parse_package

from test.conftest import REPO

# Imported by the code but never from a ROS package (pip packages and our own).
NOT_ROS = {"sdm_policy_core", "sdm_policy_ros", "rosbags"}
# ROS packages not importable on this machine (no PyPI build), known by name.
ROS_NAMES = {"launch", "launch_ros", "launch_testing", "tf2_ros", "cv_bridge", "sensor_msgs_py"}


def _is_ros_package(root: str) -> bool:
    if root in NOT_ROS:
        return False
    if root in ROS_NAMES or root.endswith(("_msgs", "_srvs", "_interfaces")):
        return True
    return root.startswith(("rclpy", "rcl_", "ament_", "rosidl_", "builtin_interfaces"))


def _imported_roots(files: list[Path]) -> dict[str, list[str]]:
    roots: dict[str, list[str]] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                roots.setdefault(name.split(".")[0], []).append(str(path.relative_to(REPO)))
    return roots


def _declared(package) -> set[str]:
    deps = package.exec_depends + package.build_export_depends + package.build_depends
    return {d.name for d in deps} | {d.name for d in package.buildtool_depends}


def test_manifests_are_valid_format_3_and_match_the_python_package():
    ros = parse_package(REPO / "package.xml")  # validates REP 149; raises InvalidPackage
    msgs = parse_package(REPO / "sdm_msgs" / "package.xml")
    assert (ros.name, msgs.name) == ("sdm_policy_ros", "sdm_msgs")
    assert ros.package_format == msgs.package_format == 3
    setup = (REPO / "setup.py").read_text()
    assert f'version="{ros.version}"' in setup, "package.xml and setup.py versions differ"
    assert ros.get_build_type() == "ament_python" and msgs.get_build_type() == "ament_cmake"
    assert ros.licenses and msgs.licenses and ros.maintainers and msgs.maintainers
    assert (REPO / "resource" / ros.name).is_file()  # the ament index marker setup.py installs


def test_every_ros_package_the_code_imports_is_declared():
    files = sorted((REPO / "sdm_policy_ros").rglob("*.py")) + sorted(
        (REPO / "launch").glob("*.py")
    )
    imported = {
        root: where for root, where in _imported_roots(files).items() if _is_ros_package(root)
    }
    declared = _declared(parse_package(REPO / "package.xml"))
    missing = {root: sorted(set(where))[:3] for root, where in imported.items()}
    missing = {root: where for root, where in missing.items() if root not in declared}
    assert missing == {}, f"declare these in package.xml (exec_depend): {missing}"


def test_interfaces_declare_the_packages_of_their_fields():
    package = parse_package(REPO / "sdm_msgs" / "package.xml")
    used = set()
    for path in sorted((REPO / "sdm_msgs").glob("*/*.*")):
        if path.suffix in (".msg", ".srv", ".action"):
            for line in path.read_text().splitlines():
                match = re.match(r"\s*([A-Za-z_]\w*)/\w+", line.split("#")[0])
                if match:
                    used.add(match.group(1))
    assert used, "no interface uses a type of another package: is the parse wrong?"
    declared = {d.name for d in package.build_depends + package.exec_depends}
    assert used - declared == set()
    cmake = (REPO / "sdm_msgs" / "CMakeLists.txt").read_text()
    assert all(f"find_package({name} REQUIRED)" in cmake for name in used)


def test_launch_files_define_a_launch_description():
    for path in sorted((REPO / "launch").glob("*.launch.py")):
        tree = ast.parse(path.read_text(), str(path))
        functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert "generate_launch_description" in functions, path.name


COPYRIGHT = re.compile(r"^# Copyright \d{4} \S", re.MULTILINE)
SOURCE_DIRS = ("sdm_policy_core", "sdm_policy_ros", "launch", "test", "benchmarks", "scripts")


def _sources() -> list[Path]:
    files = [REPO / "setup.py", *(p for p in (REPO / "bin").iterdir() if p.is_file())]
    for folder in SOURCE_DIRS:
        files += (REPO / folder).rglob("*.py")
    return sorted(files)


def test_every_source_carries_a_copyright_notice_and_the_manifests_licence():
    """What ament_copyright checks (it has no PyPI build): a notice at the top of every source."""
    licences = {str(lic) for lic in parse_package(REPO / "package.xml").licenses}
    assert licences == {"MIT"}, licences
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")
    missing = []
    for path in _sources():
        head = "\n".join(path.read_text().splitlines()[:4])
        if not COPYRIGHT.search(head) or "# SPDX-License-Identifier: MIT" not in head:
            missing.append(str(path.relative_to(REPO)))
    assert len(_sources()) > 200
    assert missing == [], f"no copyright / SPDX header in {missing}"


def test_sources_pass_lint_and_pep257_as_ament_flake8_and_ament_pep257_check_them():
    """Check the sources with ruff (ruff.toml: flake8's rules, pep257 with ament's ignores)."""
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--output-format", "concise"]
        + [str(REPO / d) for d in (*SOURCE_DIRS, "setup.py", "bin")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"D"' in (REPO / "ruff.toml").read_text()  # the pep257 rules are on


def _test_modules_imported(source: str, filename: str) -> list[str]:
    """List the test_*.py modules a source imports (absolute or relative, at any depth)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [module] if module else []
            if node.level or module.split(".")[0] == "test":  # `from test.core import test_x`
                names += [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [name for name in names if name.rsplit(".", 1)[-1].startswith("test_")]
    return found


def test_no_test_module_imports_another_test_module():
    """What tests share lives in a conftest.py or a helper module, never in a test_*.py.

    Shared helpers and fixtures live in the nearest conftest.py that covers their users, or in a
    plain helper module beside it (test/core/reference_checkpoints.py, test/ros/peers.py): a
    test module imported by another ties the two together (a fixture re-exported by import, a
    reference file's builder changing with the tests of another module).
    """
    offenders = {
        str(path.relative_to(REPO)): imported
        for path in sorted((REPO / "test").rglob("*.py"))
        if (imported := _test_modules_imported(path.read_text(), str(path)))
    }
    assert offenders == {}, offenders
