"""`python -m sdm_policy_core.cli` is the `sdm` command."""

import sys

from sdm_policy_core.cli import main

sys.exit(main())
