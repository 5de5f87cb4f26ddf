"""Deterministic synthetic dataset (two classes, or three) with a ground-truth object mask.

Every image has a smooth background texture, a few distractor shapes that all classes share
(small discs and triangles), and one class-deciding object at a random place, colour and scale:
a ring for class 0, a plus-shaped cross for class 1, and (with three classes) a diamond for
class 2. Because the deciding object's mask is
known, attribution maps can be scored against ground truth, which real photographs cannot give.

Generation is vectorised over images: shapes are drawn by broadcasting pixel coordinates
against per-image parameters, so there is no per-image Python loop.
"""

from __future__ import annotations

import torch

CLASS_NAMES = ("ring", "cross")
THREE_CLASS_NAMES = ("ring", "cross", "diamond")


def _smooth_texture(gen: torch.Generator, n: int, size: int) -> torch.Tensor:
    """Low-frequency colour noise (upsampled from a 4x4 grid) plus fine grain."""
    coarse = torch.rand(n, 3, 4, 4, generator=gen)
    tex = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    tex = 0.3 + 0.4 * tex.clamp(0, 1)
    return tex + 0.04 * torch.randn(n, 3, size, size, generator=gen)


def _paint(img: torch.Tensor, mask: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """Paint `colour` (n, 3) on `img` (n, 3, H, W) where `mask` (n, H, W) is true."""
    m = mask.unsqueeze(1).to(img.dtype)
    return img * (1 - m) + colour[:, :, None, None] * m


def _disc(yy, xx, cy, cx, r):
    return (yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2 <= r[:, None, None] ** 2


def _triangle(yy, xx, cy, cx, r):
    # Upward triangle: below the apex lines, above the base.
    dy = yy - cy[:, None, None]
    dx = (xx - cx[:, None, None]).abs()
    rr = r[:, None, None]
    return (dy <= rr * 0.6) & (dy >= -rr + 2 * dx)


def _ring(yy, xx, cy, cx, r):
    d2 = (yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2
    rr = r[:, None, None]
    return (d2 <= rr**2) & (d2 >= (0.55 * rr) ** 2)


def _cross(yy, xx, cy, cx, r):
    dy = (yy - cy[:, None, None]).abs()
    dx = (xx - cx[:, None, None]).abs()
    rr = r[:, None, None]
    arm = 0.3 * rr
    return ((dy <= rr) & (dx <= arm)) | ((dx <= rr) & (dy <= arm))


def _diamond(yy, xx, cy, cx, r):
    return (yy - cy[:, None, None]).abs() + (xx - cx[:, None, None]).abs() <= r[:, None, None]


def make_synthetic(n: int, size: int, seed: int, n_distractors: int = 2, n_classes: int = 2):
    """Return (images in [0, 1], labels, object masks) for `n` images of `size` pixels.

    Classes take turns 0, 1, 0, 1 ... (0, 1, 2, 0, ... with three), so every prefix is balanced.
    Same seed, same data; the two-class set does not depend on whether a third class exists.
    """
    if n <= 0 or size < 8:
        raise ValueError(f"synthetic dataset needs n > 0 and size >= 8 (got n={n}, size={size})")
    if n_classes not in (2, 3):
        raise ValueError(f"synthetic dataset has 2 or 3 classes (got {n_classes})")
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % n_classes
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    yy, xx = coords[None, :, None], coords[None, None, :]
    img = _smooth_texture(gen, n, size)

    def params(lo, hi):
        r = size * (lo + (hi - lo) * torch.rand(n, generator=gen))
        cy = r + (size - 2 * r) * torch.rand(n, generator=gen)
        cx = r + (size - 2 * r) * torch.rand(n, generator=gen)
        colour = torch.rand(n, 3, generator=gen)
        return cy, cx, r, colour

    for k in range(n_distractors):
        cy, cx, r, colour = params(0.06, 0.12)
        shape = _disc if k % 2 == 0 else _triangle
        img = _paint(img, shape(yy, xx, cy, cx, r), colour)

    # The deciding object stands out from the background: dark on light, light on dark.
    cy, cx, r, colour = params(0.2, 0.32)
    light_bg = img.mean(dim=(1, 2, 3)) > 0.5
    colour = torch.where(light_bg[:, None], 0.3 * colour, 0.7 + 0.3 * colour)
    obj = torch.where(labels[:, None, None] == 0, _ring(yy, xx, cy, cx, r), _cross(yy, xx, cy, cx, r))
    if n_classes == 3:
        obj = torch.where(labels[:, None, None] == 2, _diamond(yy, xx, cy, cx, r), obj)
    img = _paint(img, obj, colour)
    return img.clamp(0, 1), labels, obj


def blob_maps(n: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """Attribution-like maps (n, h, w) for tests and benchmarks: smoothed noise, squared, with a
    few sharp peaks, so that thresholds give blobs, holes and stray pixels."""
    x = torch.randn(n, 1, h, w, generator=gen)
    x = torch.nn.functional.avg_pool2d(x, 7, 1, 3, count_include_pad=False)[:, 0] ** 2
    peaks = torch.rand(n, h, w, generator=gen) > 0.995
    return x + peaks * x.amax((-2, -1), keepdim=True)
