# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
