"""Seeded work that leaves the caller's random state as it was.

`torch.manual_seed` reseeds the CPU and every accelerator and restores nothing: a library call
that used it would change what the user's own code draws next, and on a machine with several
GPUs reseed the ones it never touched. `seeded` seeds only the CPU and the one device the work
runs on (CUDA, XPU, MPS), and gives both their states back after; the draws inside are those of
torch.manual_seed. A model spread over several devices gets only the named device seeded. NumPy's
global generator is seeded and given back too: captum's GradientShap draws its interpolation
points from it."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import numpy as np
import torch


@contextmanager
def seeded(seed: int, device: torch.device | str | None = None):
    """Run the block under `seed` on the CPU's generator and, for an accelerator, that device's
    (and NumPy's global one)."""
    device = torch.device(device if device is not None else "cpu")
    on = [] if device.type == "cpu" else [device]
    # device_type only for an accelerator: torch 2.11 (the GPU machines' image) takes no None
    with torch.random.fork_rng(devices=on, **({"device_type": device.type} if on else {})):
        torch.default_generator.manual_seed(seed)
        if on:
            module = torch.get_device_module(device.type)
            # the device's own generator (MPS has one device and no device context)
            with module.device(device) if hasattr(module, "device") else nullcontext():
                module.manual_seed(seed)
        numpy_state = np.random.get_state()
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            np.random.set_state(numpy_state)
