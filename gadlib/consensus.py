"""GAD step 3 (METHOD.md): important pixels, the consensus of all models, the GAD map, and the
matched-area baseline. Everything works on whole batches of maps (..., H, W) at once."""

from __future__ import annotations

import torch

from .config import FRAC_MAX_TAU, TOP_Q
from .errors import GADInputError


def reduce_channels(attr: torch.Tensor) -> torch.Tensor:
    """(..., C, H, W) attribution -> (..., H, W) map: sum of absolute values over channels."""
    return attr.abs().sum(-3)


def pixel_ranks(maps: torch.Tensor) -> torch.Tensor:
    """Rank of every pixel in its map, 0 = largest. Ties go to the lower pixel index, so the
    result is deterministic."""
    flat = maps.flatten(-2)
    order = torch.argsort(-flat, dim=-1, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(-1, order, torch.arange(flat.shape[-1], device=flat.device).expand_as(order))
    return ranks.view(maps.shape)


def top_k_mask(maps: torch.Tensor, k: torch.Tensor | int) -> torch.Tensor:
    """The k largest pixels of each map (k per map, broadcastable), never a zero-valued one:
    the pixels whose `pixel_ranks` are below k. Found from the k-th largest value (topk, several
    times faster than ranking every pixel): every pixel above it, and the first pixels equal to
    it in index order until k are taken."""
    flat = maps.flatten(-2)
    k = torch.as_tensor(k, device=maps.device).long().clamp(0, flat.shape[-1])
    while k.dim() and k.dim() < maps.dim() - 2:  # k's dimensions are the maps' leading ones
        k = k[..., None]
    k = k.expand(flat.shape[:-1])[..., None]
    k_max = int(k.max()) if k.numel() else 0
    if k_max == 0:
        return torch.zeros_like(maps, dtype=torch.bool)
    if bool((k == k_max).all()):  # one k: the smallest of the k largest, no sorting needed
        kth = flat.topk(k_max, dim=-1, sorted=False).values.amin(-1, keepdim=True)
    else:
        kth = flat.topk(k_max, dim=-1, sorted=True).values.gather(-1, (k - 1).clamp(min=0))
        kth = torch.where(k > 0, kth, torch.inf)
    above = flat > kth
    tied = flat == kth
    short = k - above.sum(-1, keepdim=True)  # how many of the tied pixels to take
    if bool(((tied.sum(-1, keepdim=True) > short) & (kth > 0)).any()):  # ties at a nonzero threshold: by position
        tied = tied & (tied.cumsum(-1) <= short)
    return ((above | tied) & (flat > 0)).view(maps.shape)


def important(maps: torch.Tensor, rule: str = "top_q", q: float = TOP_Q, tau: float = FRAC_MAX_TAU) -> torch.Tensor:
    """Important pixels of each map: the top `q` fraction of pixels ("top_q") or the pixels at
    least `tau` x the map's maximum ("frac_max"). Zero-valued pixels are never important."""
    if rule == "top_q":
        return top_k_mask(maps, int(round(q * maps.shape[-1] * maps.shape[-2])))
    if rule == "frac_max":
        peak = maps.flatten(-2).amax(-1)[..., None, None]
        return (maps >= tau * peak) & (maps > 0)
    raise GADInputError(f"unknown threshold rule {rule!r}: choose top_q or frac_max")


def consensus(maps: torch.Tensor, rule: str = "top_q", q: float = TOP_Q, tau: float = FRAC_MAX_TAU) -> torch.Tensor:
    """`maps` is (models, ..., H, W) with the original model first. Returns the pixels that every
    model ranks important."""
    return important(maps, rule, q, tau).all(dim=0)


def gad_map(original_map: torch.Tensor, consensus_mask: torch.Tensor) -> torch.Tensor:
    """The original map where the consensus holds, 0 elsewhere: GAD never adds a pixel."""
    return original_map * consensus_mask


def matched_area_map(original_map: torch.Tensor, consensus_mask: torch.Tensor) -> torch.Tensor:
    """Baseline: the original map's own top |C| pixels, a plain intensity filter of the same area."""
    k = consensus_mask.flatten(-2).sum(-1)
    return original_map * top_k_mask(original_map, k)


def regions(maps: torch.Tensor, rule: str = "top_q", q: float = TOP_Q, tau: float = FRAC_MAX_TAU):
    """GAD step 3 in one call, for (models, ..., H, W) maps with the original first: the
    consensus mask and the three maps the evaluation compares, {"orig", "gad", "base"} (the
    original, the GAD map and the matched-area baseline)."""
    c = consensus(maps, rule, q, tau)
    return c, views(maps[0], c)


def views(original_map: torch.Tensor, consensus_mask: torch.Tensor) -> dict:
    """{"orig", "gad", "base"}: the original map, the GAD map and the matched-area baseline."""
    return {
        "orig": original_map,
        "gad": gad_map(original_map, consensus_mask),
        "base": matched_area_map(original_map, consensus_mask),
    }


# The regions RS occludes (`occlusion_regions`), in the order tables and figures show them: the
# paper's Sup and GAD, then the matched-area and hull-matched baselines
RS_REGIONS = ("sup", "gad", "base", "base_hull")


def occlusion_regions(hulls: dict) -> dict:
    """The regions RS occludes, from `hulls.region_hulls`: the GAD hull, the supplementary region
    (the original's hull minus the GAD hull), the matched-area baseline's hull and the
    hull-matched baseline's."""
    return {
        "gad": hulls["gad"],
        "sup": hulls["orig"] & ~hulls["gad"],
        "base": hulls["base"],
        "base_hull": hulls["base_hull"],
    }
