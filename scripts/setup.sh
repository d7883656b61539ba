#!/usr/bin/env bash
# The one setup path of sdm-policy-ros (README, demo, tests and CI all call it).
#
#   scripts/setup.sh            install what is missing, rebuild what changed
#   scripts/setup.sh --force    redo every step
#
# Steps: Debian packages (when missing) -> .venv -> pinned Python packages (ROS 2 Kilted wheels,
# torch==2.13.0 CPU, the rest) -> CMake path fix of the ROS wheels -> colcon build of sdm_msgs and
# sdm_policy_ros. Each step records a hash of its inputs and is skipped when they are unchanged,
# so a second run with nothing changed takes a few seconds. Afterwards `source scripts/env.sh`.
# Environment: SDM_VENV (default: <repo>/.venv), SDM_PYTHON (default: python3.11 or python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SDM_VENV:-$ROOT/.venv}"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1
START=$SECONDS
cd "$ROOT"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

# --- 1. Debian packages -------------------------------------------------------------------------
# libusb-1.0-0: open3d; libosmesa6: MuJoCo's software-GL fallback; libegl1/libgl1: MuJoCo EGL;
# libgomp1: torch/open3d OpenMP; cmake, g++, make: the colcon build of sdm_msgs.
DEB_PACKAGES=(libusb-1.0-0 libosmesa6 libegl1 libgl1 libgomp1 cmake g++ make)
missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$pkg")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  if [[ $EUID -eq 0 ]]; then SUDO=(); elif command -v sudo >/dev/null; then SUDO=(sudo -n); else
    die "missing Debian packages ${missing[*]}; run: sudo apt-get install -y ${missing[*]}"
  fi
  "${SUDO[@]}" apt-get update -qq >/dev/null \
    || die "apt-get update failed; install by hand: apt-get install -y ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
fi

# --- 2. virtual environment ---------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  PY="${SDM_PYTHON:-$(command -v python3.11 || command -v python3)}"
  "$PY" -c 'import sys; assert sys.version_info >= (3, 10), sys.version' \
    || die "$PY is older than Python 3.10; set SDM_PYTHON to a Python 3.10+ interpreter"
  say "creating $VENV with $("$PY" --version)"
  "$PY" -m venv "$VENV"
fi
PYBIN="$VENV/bin/python"

# --- 3. pinned Python packages ------------------------------------------------------------------
DEPS_STAMP="$VENV/.sdm-deps.sha256"
deps_hash=$(hash_of requirements/*.txt setup.py setup.cfg)
if ((FORCE)) || [[ "$(cat "$DEPS_STAMP" 2>/dev/null)" != "$deps_hash" ]]; then
  say "installing Python packages (first run: about 90 s, 2.5 GB)"
  log="$VENV/pip-install.log"
  # torch first, from the CPU wheel, so that nothing later pulls a CUDA build.
  if ! { "$PYBIN" -m pip install -q --progress-bar off --upgrade pip \
         && "$PYBIN" -m pip install -q --progress-bar off -c requirements/constraints.txt torch \
         && "$PYBIN" -m pip install -q --progress-bar off -c requirements/constraints.txt \
              -r requirements/core.txt -r requirements/ros.txt -r requirements/dev.txt \
         && "$PYBIN" -m pip install -q --progress-bar off --no-deps -c requirements/constraints.txt \
              -r requirements/no-deps.txt \
         && "$PYBIN" -m pip install -q --progress-bar off --no-deps -e . ; } >"$log" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$log" | tail -n 30 >&2
    die "pip install failed (full log: $log)"
  fi
  # The ROS wheels' CMake export files name the build host's Python; point them at this venv.
  PYINC=$("$PYBIN" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
  NPINC=$("$PYBIN" -c "import numpy; print(numpy.get_include())")
  { grep -rl --include='*.cmake' /opt/python/cp311-cp311 "$VENV/share" 2>/dev/null || true; } \
    | xargs -r sed -i \
      -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$NPINC#g" \
      -e "s#/opt/python/cp311-cp311/include/python3.11#$PYINC#g"
  echo "$deps_hash" >"$DEPS_STAMP"
  rm -f "$ROOT/install/.sdm-build.sha256"   # new packages: rebuild the interfaces
fi

# --- 4. colcon build of sdm_msgs and sdm_policy_ros ---------------------------------------------
BUILD_STAMP="$ROOT/install/.sdm-build.sha256"
build_inputs=(package.xml setup.py setup.cfg colcon_defaults.yaml bin/* sdm_msgs/package.xml
              sdm_msgs/CMakeLists.txt sdm_msgs/msg/* sdm_msgs/srv/*)
# symlink-install links every data file once: a new or removed launch/config file needs a build.
build_hash=$( { hash_of "${build_inputs[@]}"; { find launch config -type f 2>/dev/null || true; } | sort; } | sha256sum \
              | cut -d' ' -f1)
if ((FORCE)) || [[ "$(cat "$BUILD_STAMP" 2>/dev/null)" != "$build_hash" ]]; then
  say "building sdm_msgs and sdm_policy_ros with colcon"
  log="$ROOT/log/sdm-colcon-build.log"
  mkdir -p "$ROOT/log"
  if ! (
      set +u
      # shellcheck disable=SC1091
      source "$VENV/bin/activate"
      export AMENT_PREFIX_PATH="$VIRTUAL_ENV" CMAKE_PREFIX_PATH="$VIRTUAL_ENV"
      export COLCON_DEFAULTS_FILE="$ROOT/colcon_defaults.yaml"
      colcon --log-base "$ROOT/log" build --build-base "$ROOT/build" \
        --install-base "$ROOT/install" --event-handlers console_direct- \
        --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VIRTUAL_ENV/bin/python"
    ) >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "colcon build failed (full log: $log)"
  fi
  echo "$build_hash" >"$BUILD_STAMP"
fi

say "ready in $((SECONDS - START)) s; next: source scripts/env.sh"
