"""Loops on the request path compiled with Numba, where NumPy's cost per call would dominate.

Their machine code is cached on disk (beside the package, or in the user's cache directory), so
a process compiles them once. Where no such directory is writable (a read-only install without a
home, as in some containers) Numba refuses to cache, and would fail the import: they are then
compiled at each start instead (16-23 s on the reference machine, all kernels together).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from numba import njit

Function = TypeVar("Function", bound=Callable[..., Any])


def compiled(**options: Any) -> Callable[[Function], Function]:
    """``@compiled()``: ``numba.njit`` without the GIL, cached on disk where it can be;
    ``options`` go to ``njit`` (``inline="always"`` for small helpers)."""
    def compile(function: Function) -> Function:
        try:
            return njit(cache=True, nogil=True, **options)(function)
        except RuntimeError as error:
            if "cannot cache" not in str(error):
                raise
            return njit(nogil=True, **options)(function)
    return compile


def float32(tensor: Any) -> np.ndarray:
    """A PyTorch tensor's values as the contiguous float32 array a compiled kernel takes."""
    return np.ascontiguousarray(tensor.detach().numpy(), dtype=np.float32)
