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

from .attributions import for_evaluation
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


def same_sets(ranks: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """For K rank maps (K, N, P) of the same images (0 = most important) and pixel counts (S,):
    (K, N, S), the first map k' <= k whose `counts[s]` most important pixels are the very pixels
    of map k's. Two maps' top-c sets are equal when the largest rank, under map a, of map b's c
    top pixels is below c: one gather and a running maximum per pair of maps, for every c."""
    k, n, p = ranks.shape
    order = torch.empty_like(ranks).scatter_(-1, ranks, torch.arange(p, device=ranks.device).expand_as(ranks))
    first = torch.arange(k, device=ranks.device).view(k, 1, 1).repeat(1, n, len(counts))
    counts = counts.to(ranks.device)
    last = (counts - 1).clamp(min=0)
    for b in range(1, k):
        for a in range(b):
            reach = ranks[a].gather(-1, order[b]).cummax(-1).values[:, last]  # (N, S)
            equal = (counts == 0) | (reach < counts)
            first[b] = torch.where(equal & (first[b] == b), a, first[b])
    return first


def inputs_to_evaluate(ranks: torch.Tensor, counts: torch.Tensor, share: bool = True):
    """The curves' inputs for rank maps (K, N, P) and pixel counts (S,): every (kind, map, image,
    step), kind 0 deletion and 1 insertion, numbered ((kind x K + map) x N + image) x S + step.
    Returns (jobs, source): the numbers of the inputs to evaluate, in that order, and for every
    input (2 x K x N x S) the position in `jobs` of the input that gives its logit (itself,
    unless `share` finds an earlier equal one)."""
    k, n, p = ranks.shape
    s = len(counts)
    kind, kk, nn_, ss = (g.flatten() for g in torch.meshgrid(*(torch.arange(m) for m in (2, k, n, s)), indexing="ij"))
    if share:
        ss = torch.searchsorted(counts, counts)[ss]  # steps that change as many pixels (tiny images): the first
        first = same_sets(ranks, counts).cpu()[kk, nn_, ss]
        none, every = counts[ss] == 0, counts[ss] == p
        unchanged, filled = (kind == 0) & none | (kind == 1) & every, (kind == 0) & every | (kind == 1) & none
        # the unchanged image as deletion's first step of map 0; the filled image as image 0's
        kind, kk = torch.where(unchanged | filled, 0, kind), torch.where(unchanged | filled, 0, first)
        nn_, ss = torch.where(filled, 0, nn_), torch.where(unchanged, 0, torch.where(filled, s - 1, ss))
    # sorted: the plain way's order
    return torch.unique(((kind * k + kk) * n + nn_) * s + ss, return_inverse=True)


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
    share: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Deletion and insertion curves of K maps per image.

    x: (N, C, H, W) model inputs; maps: (K, N, H, W); fill: broadcastable to x (the occlusion
    value). Returns (fractions (S,), deletion (K, N, S), insertion (K, N, S)): the target logit
    after each share of pixels changed, the unchanged image first.

    Each distinct input is evaluated once (`share`, the default): the unchanged image starts
    every deletion curve and ends every insertion curve, the fully filled image (the same for
    every image) ends and starts them, two steps may change as many pixels (on tiny images), and
    two maps often change the same pixels at a step (the matched-area baseline's first pixels are
    the original map's). On notebook 07's maps about a fifth of the inputs were such repeats.
    `share=False` evaluates every input (the plain way)."""
    model = for_evaluation(model)
    device = next(model.parameters()).device
    k, n, h, w = maps.shape
    counts = steps(h * w, step)
    s = len(counts)
    ranks = ranks_with_seeded_ties(maps, seed).view(k, n, h * w)
    jobs, source = inputs_to_evaluate(ranks, counts, share)
    ranks = ranks.view(k * n, 1, h, w).int()  # int32 halves the copies
    fill = fill.to(device)
    out = []
    # built and evaluated batch by batch, on the model's device: only the batch's distinct rank
    # maps and images travel there (a batch of 256 holds about 256 / steps of each), not one
    # copy of each per input
    for i in range(0, len(jobs), batch_size):
        job = jobs[i : i + batch_size]
        ss, rest = job % s, job // s
        nn_, rest = rest % n, rest // n
        kk, insertion = rest % k, (rest // k).bool()
        pairs, pair_of = torch.unique(kk * n + nn_, return_inverse=True)
        images, image_of = torch.unique(nn_, return_inverse=True)
        limit = counts[ss].view(-1, 1, 1, 1).to(device)
        changed = ranks[pairs.to(ranks.device)].to(device)[pair_of.to(device)] < limit
        xi = x[images].to(device)[image_of.to(device)]
        # deletion fills the changed pixels, insertion the others
        filled = changed ^ insertion.view(-1, 1, 1, 1).to(device)
        out.append(model(torch.where(filled, fill, xi)).float()[:, target])
    fractions = counts.double() / (h * w)
    # read back once: a copy to the host per batch would make the host wait for the GPU each time
    logits = torch.cat(out).cpu()[source].view(2, k, n, s).double()
    return fractions, logits[0], logits[1]


def auc(fractions: torch.Tensor, curve: torch.Tensor) -> torch.Tensor:
    """Area under a curve over the share of pixels changed (trapezoid rule, x from 0 to 1)."""
    return torch.trapezoid(curve, fractions, dim=-1)
