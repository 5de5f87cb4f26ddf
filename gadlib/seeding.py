"""Seeded work that leaves the caller's random state as it was.

`torch.manual_seed` reseeds the CPU and every CUDA device and restores nothing: a library call
that used it would change what the user's own code draws next, and on a machine with several
GPUs reseed the ones it never touched. `seeded` seeds only the CPU and the device the work runs
on, and gives both their states back after; the draws inside are those of torch.manual_seed."""

from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def seeded(seed: int, device: torch.device | str | None = None):
    """Run the block under `seed` on the CPU's generator and, for a CUDA device, that device's."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield
