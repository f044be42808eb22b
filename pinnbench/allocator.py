"""Keep freed CPU memory in the process for reuse, instead of handing it back to the OS.

glibc's malloc serves large allocations (above a threshold that adapts up to 32 MiB) with fresh
pages from ``mmap`` and unmaps them when freed, and trims the top of its heap when much is free.
A training iteration allocates its activations anew every time (at paper size, tens of
megabytes in arrays of a few megabytes), so every iteration page-faults all of them again: about
a fifth of an iteration on the Burgers problem, for nested autograd and Taylor streams alike.
Raising both thresholds keeps freed blocks in the heap, where the next iteration reuses them.
Bounded, so that a process whose peak is many gigabytes (nested autograd on Beltrami at paper
size) still returns memory: arrays above 64 MiB keep their own pages, and at most 512 MiB of free
heap top stays resident.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (glibc malloc.h)
_applied: bool | None = None


def keep_freed_memory(mmap_threshold: int = 64 << 20, trim_threshold: int = 512 << 20) -> bool:
    """Serve allocations below ``mmap_threshold`` bytes from the heap, and trim its top only when
    more than ``trim_threshold`` bytes are free there (glibc on Linux; elsewhere nothing happens).
    Idempotent; returns whether it applies."""
    global _applied
    if _applied is None:
        _applied = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                _applied = bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(
                    libc.mallopt(M_TRIM_THRESHOLD, trim_threshold))
            except (OSError, AttributeError):  # not glibc
                _applied = False
    return _applied
