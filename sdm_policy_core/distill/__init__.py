# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""SDM distillation: a one-step generator distilled from a frozen diffusion teacher."""

from sdm_policy_core.distill.sdm import Corrector, Ema, OneStepGenerator, SdmDistiller

__all__ = ["Corrector", "Ema", "OneStepGenerator", "SdmDistiller"]
