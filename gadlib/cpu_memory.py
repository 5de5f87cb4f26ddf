"""Keep the memory that freed tensors held in the process, so the next tensor reuses its pages.

glibc's malloc serves every request above a threshold (at most 32 MB) with a fresh mapping and
unmaps it on free; smaller freed memory at the heap's top goes back to the system too. A CPU
training step or attribution batch allocates and frees the same large activations over and
over, so each one is faulted in again, page by page: an Integrated Gradients batch of 256
inputs of VGG16 at 32 px makes 67 MB activations, and its attributions for 16 images took 2.9
million page faults on the 2-core EPYC (each a trap into the kernel and a zeroed page).

`keep_freed_memory()` tells malloc to map nothing of its own and never to trim its heap, so
freed memory stays in the heap and is reused. The process keeps its peak memory until it ends,
and glibc's aligned allocations (which torch uses) can leave several same-size holes before
they coalesce: a loop of one 100 MB tensor settled at 1.2 GB resident. The arithmetic is
untouched, since where a tensor lies changes no kernel's result. Setting it is the notebooks'
business (`stages.setup`, CPU runs only); `GAD_KEEP_FREED_MEMORY=0` turns it off.
"""

from __future__ import annotations

import ctypes
import os
import platform

# mallopt's parameters (malloc.h)
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
    # 1 on success; the largest trim threshold an int holds (2 GB of free heap top)
    _applied = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1
    return _applied
