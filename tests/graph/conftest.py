"""Shared helpers of the graph tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from torch.profiler import ProfilerActivity, profile


def _largest_allocation(fn: Callable[[], object]) -> int:
    """Bytes of the largest single CPU allocation made by any operator while ``fn`` runs."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    return max(event.cpu_memory_usage for event in prof.events())


@pytest.fixture
def largest_allocation() -> Callable[[Callable[[], object]], int]:
    return _largest_allocation
