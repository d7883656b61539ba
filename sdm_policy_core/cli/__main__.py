# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`python -m sdm_policy_core.cli` is the `sdm` command."""

import sys

from sdm_policy_core.cli import main

sys.exit(main())
