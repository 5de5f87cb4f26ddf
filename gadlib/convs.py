"""Convolutions whose output is a single pixel, computed as the linear layers they are.

At 32 px, ResNet18's last stage sees 2 x 2 and 1 x 1 maps: three of its 3 x 3 convolutions
read a 1 x 1 map (only the centre tap touches it, the rest read padding) and one reads a
2 x 2 map into a 1 x 1 output. oneDNN's backward pass of such a convolution on a CPU took
48 ms against 5 ms forward (batch 64, an AVX2-only EPYC), 40% of a training step. Whenever
the whole input lies inside the one output pixel's kernel window, the convolution equals
`linear(x.flatten(1), weight[:, :, window].flatten(1))`: the same function (its rounding
differs, as between two convolution kernels), with zero gradient for the taps that read only
padding, as the convolution gives them. Any other input takes the convolution itself.

The swap changes a module's class, not its parameters: its state_dict, its `isinstance`
checks and any checkpoint stay those of `nn.Conv2d`.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F

# Off: every SinglePixelConv2d runs as the convolution (benchmarks/speed.py --stage convs times both).
ENABLED = True


def _window(conv: nn.Conv2d, height: int, width: int) -> tuple[slice, slice] | None:
    """The kernel taps that read the input, where the output is one pixel whose window holds
    the whole input; None where the convolution must run as one."""
    if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str) or conv.dilation != (1, 1):
        return None
    taps = []
    for size, k, p, s in zip((height, width), conv.kernel_size, conv.padding, conv.stride):
        # one output pixel ((size + 2p - k) // s + 1 == 1), and the input inside its window
        if not (0 <= size + 2 * p - k < s and size + p <= k):
            return None
        taps.append(slice(p, p + size))
    return taps[0], taps[1]


class SinglePixelConv2d(nn.Conv2d):
    """`nn.Conv2d` that runs as a linear layer where its output is one pixel (module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window = _window(self, x.shape[-2], x.shape[-1]) if ENABLED and x.dim() == 4 else None
        if window is None:
            return super().forward(x)
        weight = self.weight[:, :, window[0], window[1]].flatten(1)
        return F.linear(x.flatten(1), weight, self.bias)[:, :, None, None]


def _swap(model: nn.Module, old: type, new: type) -> list[nn.Module]:
    """Every module of exactly class `old` (not a subclass) becomes a `new`; returns them."""
    modules = [m for m in model.modules() if type(m) is old]
    for m in modules:
        m.__class__ = new
    return modules


def plain_convs(model: nn.Module) -> nn.Module:
    """Every `SinglePixelConv2d` of `model` back to `nn.Conv2d`, in place (FX's batch-norm
    folding matches plain `nn.Conv2d` only)."""
    _swap(model, SinglePixelConv2d, nn.Conv2d)
    return model


def use_single_pixel_convs(model: nn.Module) -> nn.Module:
    """Every plain `nn.Conv2d` of `model` becomes a `SinglePixelConv2d`, in place, for good (for
    copies the caller owns, such as the attribution engine's prepared models)."""
    _swap(model, nn.Conv2d, SinglePixelConv2d)
    return model


@contextmanager
def single_pixel_convs(model: nn.Module):
    """`use_single_pixel_convs` for the duration of a `with` block (training, SmoothGrad); the
    model's convolutions are plain `nn.Conv2d` again afterwards, even after an exception."""
    swapped = []
    try:
        swapped = _swap(model, nn.Conv2d, SinglePixelConv2d)
        yield model
    finally:
        for m in swapped:
            m.__class__ = nn.Conv2d
