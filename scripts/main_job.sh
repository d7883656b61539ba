#!/usr/bin/env bash
# README command 1: set up what is missing, then run the whole loop on the embedded simulator
# (demos through the ROS 2 sim bridge -> bag -> zarr -> teacher -> SDM -> sim-in-the-loop
# evaluation -> runs/main_job/report.md). Arguments go to sdm_policy_ros.main_job (--help).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
set +u
# shellcheck disable=SC1091
source scripts/env.sh
set -u
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( 100 + RANDOM % 100 ))}"
exec python -m sdm_policy_ros.main_job "$@"
