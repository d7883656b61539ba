# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Training tests; shared fixtures live in test/conftest.py, this level's below."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread for a module (exact, reproducible reference outputs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
