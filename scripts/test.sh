#!/usr/bin/env bash
# The README's test command: set up what is missing, then lint and run the whole test suite.
#   scripts/test.sh [pytest args...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
set +u
# shellcheck disable=SC1091
source scripts/env.sh
set -u
# A ROS domain of this run's own (DDS stays on this machine: scripts/env.sh): test/conftest.py
# claims one no other run here holds, unless SDM_TEST_DOMAIN_ID names it. ROS tests fail
# rather than skip when ROS is missing.
unset ROS_DOMAIN_ID
if [[ -n "${SDM_TEST_DOMAIN_ID:-}" ]]; then
  export ROS_DOMAIN_ID="$SDM_TEST_DOMAIN_ID"
fi
export SDM_REQUIRE_ROS=1
echo "[test] ruff (lint + format check)"
ruff check .
ruff format --check .
echo "[test] pytest (ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-claimed by test/conftest.py})"
set +e
python -m pytest "$@"
code=$?
set -e
if [[ $code -eq 5 ]]; then
  echo "[test] pytest collected no tests: that is a failure" >&2
fi
exit $code
