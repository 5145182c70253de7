"""Settings shared by ``tests`` and ``e2e``: leaks surface in the module that made them."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module", autouse=True)
def _collect_garbage_per_module() -> Iterator[None]:
    """A socket or file left open inside a reference cycle warns (an error here, under
    ``filterwarnings = error``) only when the garbage collector finds it, which may be in any
    later test. Collecting at the end of every module pins the warning to the module that
    leaked it."""
    yield
    gc.collect()
