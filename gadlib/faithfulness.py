"""Deletion and insertion curves: faithfulness of a map without any hull.

Deletion removes the map's most important pixels first (replaced by the occlusion fill, as for
RS) and follows the logit of the target class; insertion starts from the fully filled image and
puts the most important pixels back first. A faithful map makes the deletion curve fall fast
(low AUC) and the insertion curve rise fast (high AUC). Ties in a map (the zeros outside a sparse
map) are taken in one seeded random order, the same for every map, so the tail of a curve is not
a sweep from the top-left corner.

Quantus's PixelFlipping is the deletion curve; it has no insertion curve and perturbs channel
values rather than whole pixels, so this batched version is used (tests/test_controls.py shows
it equal to Quantus's on single-channel inputs, and equal to a hand computation).
"""

from __future__ import annotations

import math

import torch

from .consensus import pixel_ranks


def steps(n_pixels: int, step: float) -> torch.Tensor:
    """Number of pixels changed after each step: 0, step, 2 step, ... of the pixels, up to all."""
    n = math.ceil(1 / step - 1e-9)
    return torch.tensor([min(n_pixels, round(s * step * n_pixels)) for s in range(n + 1)])


def ranks_with_seeded_ties(maps: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Rank of every pixel, 0 = largest; equal values (the zeros outside a sparse map) in one
    seeded random order shared by every map, not in raster order."""
    h, w = maps.shape[-2:]
    # drawn on the CPU, so every device gets the same order
    perm = torch.randperm(h * w, generator=torch.Generator().manual_seed(seed)).to(maps.device)
    shuffled = maps.flatten(-2)[..., perm].view(maps.shape)
    ranks = torch.empty_like(perm.expand(*maps.shape[:-2], h * w))
    ranks[..., perm] = pixel_ranks(shuffled).flatten(-2)  # ties now go to the lower shuffled index
    return ranks.view(maps.shape)


@torch.no_grad()
def curves(
    model: torch.nn.Module,
    x: torch.Tensor,
    maps: torch.Tensor,
    target: int,
    fill: torch.Tensor,
    step: float = 0.05,
    batch_size: int = 256,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Deletion and insertion curves of K maps per image.

    x: (N, C, H, W) model inputs; maps: (K, N, H, W); fill: broadcastable to x (the occlusion
    value). Returns (fractions (S,), deletion (K, N, S), insertion (K, N, S)): the target logit
    after each share of pixels changed, the unchanged image first."""
    model.eval()
    device = next(model.parameters()).device
    k, n, h, w = maps.shape
    counts = steps(h * w, step)
    ranks = ranks_with_seeded_ties(maps, seed).view(k * n, 1, h, w).int()  # 0 = most important; int32 halves the copies
    fill = fill.to(device)
    out = {"deletion": [], "insertion": []}
    # every (map, image, step) is one input; built and evaluated batch by batch, on the model's
    # device: only the batch's distinct rank maps and images travel there (a batch of 256 holds
    # about 256 / steps of each), not one copy of each per input
    jobs = torch.stack(
        torch.meshgrid(torch.arange(k), torch.arange(n), torch.arange(len(counts)), indexing="ij"), -1
    ).view(-1, 3)
    for kind in out:
        for i in range(0, len(jobs), batch_size):
            kk, nn_, ss = jobs[i : i + batch_size].unbind(1)
            pairs, pair_of = torch.unique(kk * n + nn_, return_inverse=True)
            images, image_of = torch.unique(nn_, return_inverse=True)
            limit = counts[ss].view(-1, 1, 1, 1).to(device)
            changed = ranks[pairs].to(device)[pair_of.to(device)] < limit
            xi = x[images].to(device)[image_of.to(device)]
            inputs = torch.where(changed, fill, xi) if kind == "deletion" else torch.where(changed, xi, fill)
            out[kind].append(model(inputs).float()[:, target])
    fractions = counts.double() / (h * w)
    # read back once: a copy to the host per batch would make the host wait for the GPU each time
    return (
        fractions,
        torch.cat(out["deletion"]).cpu().view(k, n, -1).double(),
        torch.cat(out["insertion"]).cpu().view(k, n, -1).double(),
    )


def auc(fractions: torch.Tensor, curve: torch.Tensor) -> torch.Tensor:
    """Area under a curve over the share of pixels changed (trapezoid rule, x from 0 to 1)."""
    return torch.trapezoid(curve, fractions, dim=-1)
