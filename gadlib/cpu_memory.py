"""Keep the memory that freed tensors held in the process, so the next tensor reuses its pages.

glibc's malloc serves every request above a threshold (at most 32 MB) with a fresh mapping and
unmaps it on free, and gives freed memory at its heap's top back to the system. A CPU training
step or attribution batch allocates and frees the same large activations over and over, so
each one was faulted in again, page by page: each a trap into the kernel and a zeroed page
(`python benchmarks/speed.py --stage memory`, benchmarks/README.md).

`keep_freed_memory()` tells malloc to serve the main thread's requests from its heap and never
to trim it, so freed memory is reused. The process keeps its peak memory until it ends, and
more of it: torch's aligned allocations (under glibc 2.36, the one tried) can leave holes of one size before
they coalesce. Where a tensor lies changes no kernel's result. The notebooks' setup
(`stages.setup`) makes the setting on CPU runs; `GAD_KEEP_FREED_MEMORY=0` turns it off.
"""

from __future__ import annotations

import ctypes
import os
import platform

# mallopt's parameters (malloc.h); a trim threshold of -1 turns trimming off (mallopt(3))
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
_applied = False


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse (see the module); whether it is in force.
    A no-op elsewhere than glibc, and when GAD_KEEP_FREED_MEMORY is 0."""
    global _applied
    if _applied:
        return True
    if os.environ.get("GAD_KEEP_FREED_MEMORY", "1") == "0" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    _applied = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, -1) == 1  # 1: done
    return _applied


def on_the_cpu(device: str) -> bool:
    """Whether a run's `device` setting ("auto", "cpu", "cuda", ...) computes on the CPU; read
    without parsing it, so an unknown name is left to the code that uses the device."""
    if device == "auto":
        import torch

        return not torch.cuda.is_available()
    return device == "cpu"
