# Source me (bash): the environment every run of sdm-policy-ros uses.
#   source scripts/env.sh
# Activates .venv, makes the ROS 2 wheels and the colcon-built sdm_msgs importable, and confines
# DDS discovery to this machine. Run scripts/setup.sh first.
_sdm_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_sdm_venv="${SDM_VENV:-$_sdm_root/.venv}"
if [[ ! -x "$_sdm_venv/bin/python" ]]; then
  echo "sdm: no environment at $_sdm_venv; run $_sdm_root/scripts/setup.sh first" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
source "$_sdm_venv/bin/activate"
case ":${AMENT_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;;
  *) export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;; esac
case ":${CMAKE_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;;
  *) export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}" ;; esac
if [[ -f "$_sdm_root/install/setup.bash" ]]; then
  # colcon's scripts read unset variables; do not let a caller's `set -u` break them.
  case $- in *u*) set +u; source "$_sdm_root/install/setup.bash"; set -u ;;
    *) source "$_sdm_root/install/setup.bash" ;; esac
fi
# DDS traffic never leaves this machine (Kilted reads the first, older distros the second).
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_LOCALHOST_ONLY=1
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
# Off-screen rendering for MuJoCo: EGL on Mesa; `sdm doctor` says when osmesa is needed instead.
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-$MUJOCO_GL}"
export SDM_ROOT="$_sdm_root"
unset _sdm_root _sdm_venv
