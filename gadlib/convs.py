"""Convolutions on maps so small that every output pixel's kernel window holds the whole input,
computed as the linear layers they are.

At 32 px, ResNet18's last stage sees 1 x 1 maps (three of its 3 x 3 convolutions read one, a
fourth reads a 2 x 2 map into a 1 x 1 output) and its third stage 2 x 2 maps; VGG16's last
block sees 2 x 2 maps. oneDNN's backward pass of such convolutions is slow on a CPU: 48 ms
against 5 ms forward for ResNet18's 1 x 1 maps, and 80-117 ms against 18 ms for VGG16's
2 x 2 ones (batch 64, an AVX2-only EPYC), where the padded taps are over half the work.

When every output pixel's window holds the whole input (on both axes: the first window ends
past the input and the last starts before it), output pixel o reads input pixel i through tap
`i - o * stride + padding`, so the convolution equals `linear(x.flatten(1), W)` with W made of
those taps: the same function (its rounding differs, as between two convolution kernels), with
zero gradient for the taps that read only padding, as the convolution gives them. A one-pixel
output takes the kernel window's taps as they lie (a slice); a larger one gathers them. Any
other input takes the convolution itself.

The swap changes a module's class, not its parameters: its state_dict, its `isinstance`
checks and any checkpoint stay those of `nn.Conv2d`.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache

import torch
from torch import nn
from torch.nn import functional as F

# Off: every SmallMapConv2d runs as the convolution (benchmarks/speed.py --stage convs times both).
ENABLED = True


def _outputs(conv: nn.Conv2d, height: int, width: int) -> tuple[int, int] | None:
    """The output's height and width where every output pixel's window holds the whole input;
    None where the convolution must run as one."""
    if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str) or conv.dilation != (1, 1):
        return None
    out = []
    for size, k, p, s in zip((height, width), conv.kernel_size, conv.padding, conv.stride):
        if size + 2 * p < k:
            return None  # no output: the convolution raises as it should
        n = (size + 2 * p - k) // s + 1
        # the first window [-p, k - p) ends past the input, the last [(n-1)s - p, ...) starts before it
        if size + p > k or (n - 1) * s > p:
            return None
        out.append(n)
    return out[0], out[1]


@lru_cache(maxsize=64)
def _tap_index(height: int, width: int, out_h: int, out_w: int, kw: int, ph: int, pw: int, sh: int, sw: int, device):
    """For every (output row, output column, input row, input column), the flat kernel tap
    (row * kw + column) that joins them."""
    with torch.inference_mode(False):  # usable by autograd later, even if first made in inference mode
        oi = torch.arange(out_h, device=device)[:, None, None, None]
        oj = torch.arange(out_w, device=device)[None, :, None, None]
        ii = torch.arange(height, device=device)[None, None, :, None]
        ij = torch.arange(width, device=device)[None, None, None, :]
        return ((ii - oi * sh + ph) * kw + (ij - oj * sw + pw)).reshape(-1)


def _linear_weight(conv: nn.Conv2d, height: int, width: int, out_h: int, out_w: int) -> torch.Tensor:
    """The (out channels x out_h x out_w, in channels x height x width) matrix of the
    convolution on such a small map, in the order of `flatten(1)` of its output and input."""
    w = conv.weight
    (kh, kw), (ph, pw), (sh, sw) = conv.kernel_size, conv.padding, conv.stride
    if out_h == out_w == 1:  # the taps lie as a window of the kernel (the ResNet18 path since 9c92ee7)
        return w[:, :, ph : ph + height, pw : pw + width].flatten(1)
    co, ci = w.shape[:2]
    idx = _tap_index(height, width, out_h, out_w, kw, ph, pw, sh, sw, w.device)
    # taps first, so that the gather (and its backward, an index_add) moves whole co x ci blocks
    taps = w.permute(2, 3, 0, 1).reshape(kh * kw, co, ci).index_select(0, idx)
    return taps.view(out_h, out_w, height, width, co, ci).permute(4, 0, 1, 5, 2, 3).reshape(co * out_h * out_w, -1)


class SmallMapConv2d(nn.Conv2d):
    """`nn.Conv2d` that runs as a linear layer where every output pixel's window holds the whole
    input (module docstring)."""

    def _weight_for(self, height: int, width: int, out: tuple[int, int]) -> torch.Tensor:
        """The linear layer's weight. Gathering it costs about as much as the product itself
        (VGG16's 512 channels, batch 64), so for a weight that takes no gradient (the engine's
        prepared models) it is kept while the weight is unchanged: its version counter, like
        the engine's own cache, is part of the key, and the kept tuple holds the weight's own
        tensor, so a matching address is the same storage. As there, a write through
        `weight.data` moves no version counter and is not seen."""
        w = self.weight
        if out == (1, 1) or w.requires_grad or torch.is_inference_mode_enabled() or w.is_inference():
            return _linear_weight(self, height, width, *out)  # one pixel: a slice, not a copy
        key = (w._version, w.data_ptr(), w.dtype, w.device, height, width)
        kept = self.__dict__.get("_kept_weight")
        if kept is None or kept[0] != key:
            with torch.no_grad():
                kept = (key, _linear_weight(self, height, width, *out), w.detach())
            self.__dict__["_kept_weight"] = kept
        return kept[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = _outputs(self, x.shape[-2], x.shape[-1]) if ENABLED and x.dim() == 4 else None
        if out is None:
            return super().forward(x)
        weight = self._weight_for(x.shape[-2], x.shape[-1], out)
        bias = self.bias
        if bias is not None and out != (1, 1):
            bias = bias.repeat_interleave(out[0] * out[1])  # one per output channel and pixel
        return F.linear(x.flatten(1), weight, bias).view(len(x), self.out_channels, *out)


def _swap(model: nn.Module, old: type, new: type) -> list[nn.Module]:
    """Every module of exactly class `old` (not a subclass) becomes a `new`; returns them."""
    modules = [m for m in model.modules() if type(m) is old]
    for m in modules:
        m.__class__ = new
        m.__dict__.pop("_kept_weight", None)  # a weight kept by SmallMapConv2d, if any
    return modules


def plain_convs(model: nn.Module) -> nn.Module:
    """Every `SmallMapConv2d` of `model` back to `nn.Conv2d`, in place (FX's batch-norm
    folding matches plain `nn.Conv2d` only)."""
    _swap(model, SmallMapConv2d, nn.Conv2d)
    return model


def use_small_map_convs(model: nn.Module) -> nn.Module:
    """Every plain `nn.Conv2d` of `model` becomes a `SmallMapConv2d`, in place, for good (for
    copies the caller owns, such as the attribution engine's prepared models)."""
    _swap(model, nn.Conv2d, SmallMapConv2d)
    return model


@contextmanager
def small_map_convs(model: nn.Module):
    """`use_small_map_convs` for the duration of a `with` block (training); the
    model's convolutions are plain `nn.Conv2d` again afterwards, even after an exception."""
    swapped = []
    try:
        swapped = _swap(model, nn.Conv2d, SmallMapConv2d)
        yield model
    finally:
        for m in swapped:
            m.__class__ = nn.Conv2d
            m.__dict__.pop("_kept_weight", None)
