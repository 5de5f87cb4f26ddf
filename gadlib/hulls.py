"""Convex-hull masks, batched over maps, exactly equal to scikit-image's `convex_hull_image`.

scikit-image (the definition, and the reference in the tests) gives each true pixel (r, c) the
four edge midpoints (r +- 1/2, c) and (r, c +- 1/2), takes their convex hull, and keeps every
pixel centre inside it or on its boundary. It does that one mask at a time through Qhull. Here
the same polygon is built for a whole batch at once, in exact integer arithmetic:

- in doubled coordinates (Y = 2y, X = 2x) every hull point is an integer, so every test is
  exact, with no tolerance;
- at each height Y only the leftmost and rightmost point matters, so the hull is the region
  between the convex minorant of the left points and the concave majorant of the right ones;
- only running minima (from the top or from the bottom) can be corners of a chain, so one
  search over those candidate heights finds both chains' corners of every mask at once (on the
  CPU a monotone-chain pass in lockstep, whose Python loop is over heights, never over maps; on
  CUDA a test of every pair of candidates), and each pixel row is then filled between
  two exact integer bounds.

Empty masks give empty hulls; one pixel gives that pixel; collinear pixels give the line.
"""

from __future__ import annotations

import numpy as np
import torch

from .consensus import important, pixel_ranks
from .errors import GADInputError

CHUNK = 256  # masks per pass: keeps the (chunk, H, W) temporaries in cache
NONE = 1 << 40  # "no point at this height": beyond any coordinate, small enough for exact products


def hull_mask(mask: np.ndarray) -> np.ndarray:
    """scikit-image's filled convex hull (boundary included) of one 2-D mask, empty for an empty
    mask: the reference the batched `hull_masks` is tested against."""
    from skimage.morphology import convex_hull_image  # the reference only: not imported by the pipeline

    if not mask.any():
        return np.zeros_like(mask, dtype=bool)
    return convex_hull_image(mask)


def hull_masks(masks: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """Filled convex hulls of a batch of boolean masks (..., H, W), on `device` (default: the
    masks' own, so a run's `device` setting decides, as it does for the maps the masks come
    from), returned on the masks' own device. The chain pass has a fixed cost per call, so one
    call with many masks is much faster than many calls with few."""
    if device is None:
        device = masks.device
    flat = masks.reshape(-1, *masks.shape[-2:])
    if len(flat) == 0:
        return torch.zeros(masks.shape, dtype=torch.bool, device=masks.device)
    chunks = range(0, len(flat), CHUNK)
    edges = [_edges(flat[i : i + CHUNK].to(device, torch.bool)) for i in chunks]
    lo, hi = _hull_rows(torch.cat([e[0] for e in edges]), torch.cat([e[1] for e in edges]))
    w = flat.shape[-1]
    small = torch.int16 if w < 1 << 14 else torch.int32  # the fill compares columns in the smallest type
    cols = torch.arange(w, device=device, dtype=small)
    lo, hi = lo.clamp(-1, w).to(small)[..., None], hi.clamp(-1, w).to(small)[..., None]
    out = torch.empty(flat.shape, dtype=torch.bool, device=device)
    for i in chunks:
        part = out[i : i + CHUNK]
        torch.ge(cols, lo[i : i + CHUNK], out=part)
        part &= cols <= hi[i : i + CHUNK]
    return out.to(masks.device).view(masks.shape)


def _hull_rows(first: torch.Tensor, last: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The first and last column of the hull in each row (B, H), from the masks' leftmost and
    rightmost true column of each row (`_edges`); first > last where a row has none."""
    g = _outline(first, last)
    bounds = _row_bounds(g, *_lower_chain(g))
    return bounds[: len(first)], -bounds[len(first) :]


def _hull_area(first: torch.Tensor, last: torch.Tensor, w: int) -> torch.Tensor:
    """The pixel count of each hull (B,) that `hull_masks` would fill, without filling it."""
    lo, hi = _hull_rows(first, last)
    return (hi.clamp(max=w - 1) - lo.clamp(min=0) + 1).clamp(min=0).sum(-1)


def _edges(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Leftmost and rightmost true column of every row (B, H); W and -1 where a row is empty.
    Weighted column maxima, because they are several times faster than argmax on CPU."""
    w = m.shape[-1]
    dtype = torch.uint8 if w < 256 else torch.int32
    u = m.to(dtype)
    down = torch.arange(w, 0, -1, dtype=dtype, device=m.device)  # column c weighs w - c
    up = torch.arange(1, w + 1, dtype=dtype, device=m.device)  # column c weighs c + 1
    return w - (u * down).amax(-1).long(), (u * up).amax(-1).long() - 1


def _outline(first: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """Leftmost X of the hull points at each height Y = -1 .. 2H-1 (index j = Y + 1) for the
    left side, and minus the rightmost X for the right side, stacked (2B, 2H + 1); `NONE` where
    a height has no point. Row r gives (2r, 2c-1), (2r, 2c+1) and (2r +- 1, 2c)."""
    b, h = first.shape
    has = last >= 0
    left_mid = torch.where(has, 2 * first - 1, NONE)
    left_cap = torch.where(has, 2 * first, NONE)  # the points half a row above and below
    right_mid = torch.where(has, -(2 * last + 1), NONE)
    right_cap = torch.where(has, -(2 * last), NONE)
    out = torch.full((2 * b, 2 * h + 1), NONE, dtype=torch.long, device=first.device)
    pad = torch.full((2 * b, 1), NONE, dtype=torch.long, device=first.device)
    mid, cap = torch.cat([left_mid, right_mid]), torch.cat([left_cap, right_cap])
    out[:, 1::2] = mid
    out[:, 0::2] = torch.minimum(torch.cat([pad, cap], 1), torch.cat([cap, pad], 1))  # rows r-1 and r meet at Y = 2r-1
    return out


# How the chains' corners are found: None picks Andrew's monotone chain (a loop over candidate
# heights) on the CPU and, on CUDA, a test of every pair of candidates at once, whose few large
# operations spare the loop's hundreds of small ones and host syncs (in float64, which MPS
# lacks: other devices keep the chain); "chain" or "pairs" forces one (the tests run both on the
# CPU; `benchmarks/speed.py --stage hulls` times them against each other). Both find the same
# corners.
CORNER_SEARCH: str | None = None
CORNER_SEARCHES = (None, "chain", "pairs")


def _lower_chain(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Vertices of the convex minorant of each row of g (N, M) over its defined entries: their
    heights in order, then M (N, K + 1), and their count (N, 1).

    A corner of the minorant has a supporting line that touches only it, so it is lower than
    every point on one side: a strict running minimum from the top or from the bottom. Only
    those candidates (a few dozen to about a hundred for a map's hull, instead of every height)
    are searched for the corners, over all rows at once: the work is batched over masks."""
    n, m = g.shape
    from_top = torch.cat([torch.full_like(g[:, :1], NONE), g.cummin(1).values[:, :-1]], 1)
    from_bottom = torch.cat([g.flip(1).cummin(1).values.flip(1)[:, 1:], torch.full_like(g[:, :1], NONE)], 1)
    candidate = (g < NONE) & ((g < from_top) | (g < from_bottom))
    count = candidate.sum(1, keepdim=True)
    if int(count.max()) == 0:  # every mask empty: no vertices
        return torch.full((n, 1), m, dtype=torch.long, device=g.device), count
    order = torch.sort((~candidate).to(torch.uint8), dim=1, stable=True).indices[:, : int(count.max())]
    heights, values = order, g.gather(1, order)  # candidates first, in height order
    if CORNER_SEARCH not in CORNER_SEARCHES:
        raise ValueError(f"hulls.CORNER_SEARCH is {CORNER_SEARCH!r}: set None, 'chain' or 'pairs'")
    by_pairs = CORNER_SEARCH == "pairs" or (CORNER_SEARCH is None and g.device.type == "cuda")
    vertex = _vertices_by_pairs(heights, values, count) if by_pairs else _vertices_by_chain(heights, values, count)
    size = vertex.sum(1, keepdim=True)
    first = torch.sort((~vertex).to(torch.uint8), dim=1, stable=True).indices[:, : int(size.max())]
    kept = torch.arange(first.shape[1] + 1, device=g.device)[None] < size
    return torch.where(kept, torch.cat([heights.gather(1, first), heights[:, :1]], 1), m), size


def _vertices_by_chain(heights: torch.Tensor, values: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Which candidates (N, K: heights increasing, the first `count` of each row defined) are
    vertices of their row's minorant, by Andrew's monotone chain over all rows in lockstep."""
    n, k_max = heights.shape
    stack = torch.zeros(n, k_max + 1, dtype=torch.long, device=heights.device)  # column k_max takes no-op writes
    size = torch.zeros(n, 1, dtype=torch.long, device=heights.device)
    for k in range(k_max):
        push = k < count
        jk, gk = heights[:, k : k + 1], values[:, k : k + 1]
        while True:
            p1 = stack.gather(1, (size - 1).clamp(min=0))
            p2 = stack.gather(1, (size - 2).clamp(min=0))
            j1, j2 = heights.gather(1, p1), heights.gather(1, p2)
            g1, g2 = values.gather(1, p1), values.gather(1, p2)
            # drop the top vertex unless it lies strictly below the segment from the one before to k
            pop = push & (size >= 2) & ((g1 - g2) * (jk - j1) >= (gk - g1) * (j1 - j2))
            if not bool(pop.any()):
                break
            size = size - pop.long()
        stack.scatter_(1, torch.where(push, size, k_max), k)
        size = size + push.long()
    vertex = torch.zeros(n, k_max + 1, dtype=torch.bool, device=heights.device)
    vertex.scatter_(1, torch.where(torch.arange(k_max + 1, device=heights.device) < size, stack, k_max), True)
    return vertex[:, :k_max]


PAIRS_CHUNK = 1 << 24  # pair slopes per pass of _vertices_by_pairs


def _vertices_by_pairs(heights: torch.Tensor, values: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """`_vertices_by_chain`'s vertices without a loop over heights: candidate i is a vertex iff
    it lies strictly below every chord from a candidate above it to one below it, that is iff
    the largest slope reaching it from above is below the smallest leaving it downwards. Slopes
    of integer coordinates below 2^20 are distinct rationals with denominators below 2^21, so
    float64 division orders them exactly (and equal ones equal), as the chain's integer test."""
    n, k_max = heights.shape
    valid = torch.arange(k_max, device=heights.device) < count
    above = torch.ones(k_max, k_max, dtype=torch.bool, device=heights.device).triu(1)  # [a, i]: a before i
    vertex = torch.empty_like(valid)
    step = max(1, PAIRS_CHUNK // (k_max * k_max))
    for s in range(0, n, step):
        j, v, ok = heights[s : s + step].double(), values[s : s + step].double(), valid[s : s + step]
        slope = (v[:, None, :] - v[:, :, None]) / (j[:, None, :] - j[:, :, None])  # [a, i]: from a to i
        pair = above & ok[:, :, None] & ok[:, None, :]
        into = slope.masked_fill(~pair, -torch.inf).amax(1)  # over a before i
        out_of = slope.masked_fill_(~pair, torch.inf).amin(2)  # over c after i ([i, c])
        vertex[s : s + step] = ok & (into < out_of)
    return vertex


def _ceil_div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return -torch.div(-a, b, rounding_mode="floor")


def _row_bounds(g: torch.Tensor, vertices: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """For each chain of g (N, 2H + 1), given its vertex heights, and each pixel row r (height
    Y = 2r, index j = 2r + 1): the first column c whose centre 2c is on the chain or to its
    right, ceil(chain(Y) / 2). Rows outside the chain's extent get NONE, which no column meets.
    Left chains give the first column of each row, right chains (negated) minus the last."""
    n, size = g.shape
    j = torch.arange(1, size, 2, device=g.device).expand(n, -1).contiguous()
    k = torch.searchsorted(vertices, j, right=True) - 1  # last vertex at or above each row
    a = vertices.gather(1, k.clamp(min=0))
    c = vertices.gather(1, (k + (a != j).long()).clamp(min=0, max=vertices.shape[1] - 1))  # next one, or a itself
    inside = (k >= 0) & (k < count) & (c < size)
    a_, c_ = a.clamp(max=size - 1), c.clamp(max=size - 1)
    ga, gc = g.gather(1, a_), g.gather(1, c_)
    span = (c_ - a_).clamp(min=1)
    bound = _ceil_div(ga * span + (gc - ga) * (j - a_), 2 * span)  # chain(Y) = ga + (gc - ga) (j - a) / span
    return torch.where(inside, bound, NONE)


def hulls_of(
    maps: dict[str, torch.Tensor], rules: list[str], q: float, tau: float, device: torch.device | None = None
) -> dict[tuple[str, str], torch.Tensor]:
    """Hulls of the important pixels of every map in `maps` ({name: (..., H, W)}, one shape)
    under every threshold rule, in one batched call: {(rule, name): hull}, filled on `device`
    (default: the maps') and returned on the maps' device."""
    keys = [(rule, name) for rule in rules for name in maps]
    masks = torch.stack([important(maps[name], rule, q, tau) for rule, name in keys])
    return dict(zip(keys, hull_masks(masks, device).unbind(0)))


# What region_hulls returns, in the complexity stage's key: raised when a region is added or
# changes, so no cached hull file lacks it. 2: the hull-matched baseline; 3: its hull from its
# top pixels directly, so that it always reaches GAD's.
REGIONS_VERSION = 3


def region_hulls(
    views: dict[str, torch.Tensor], rules: list[str], q: float, tau: float, device: torch.device | None = None
) -> dict[tuple[str, str], torch.Tensor]:
    """`hulls_of` the views ({"orig", "gad", "base"}: `consensus.views`) and, under each rule, the
    hull of the hull-matched baseline ("base_hull"), matched to GAD's hull under that rule; filled
    on `device` (default: the views'), returned on the views' device."""
    out = hulls_of(views, rules, q, tau, device)
    # one search for every rule: the original ranked once, the rules' targets stacked before the maps'
    gad_areas = torch.stack([out[(rule, "gad")].flatten(-2).sum(-1) for rule in rules])
    matched = hull_matched_map(views["orig"], gad_areas, device)[1]
    return out | {(rule, "base_hull"): hull for rule, hull in zip(rules, matched.unbind(0))}


def hull_matched_map(
    original_map: torch.Tensor, target_area: torch.Tensor, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The hull-matched baseline: the original map's own top k pixels, with the smallest k whose
    hull covers at least `target_area` pixels (GAD's hull area, per map: broadcast against the
    maps' leading shape, so one number serves every map, and any leading dimensions of its own
    search several targets for each map at once); returns that map and its hull. The
    matched-area baseline keeps as many pixels as GAD, and its more compact pixels make a
    smaller hull; this one keeps as much hull, so that GAD's region and its own map's top pixels
    are compared at (nearly) equal area.

    The hull is of the k pixels themselves, with no second threshold: GAD's important pixels are
    positive pixels of the original map, so the hull of all of them holds GAD's and the target
    is always reached (a threshold such as the hull rule's top half could stop below it where
    consensus_q is above hull_q). The top-k sets nest as k grows, and so do their hulls: the
    area never falls with k, and a binary search over k (batched over the maps, about
    log2(H x W) steps, each a hull's rows and area without a fill, on `device`, default the
    map's) finds the smallest k."""
    positive = original_map > 0  # top_k_mask never takes a zero pixel
    target = torch.as_tensor(target_area, device=original_map.device).double()
    maps = original_map.shape[:-2]
    try:  # one number for every map, or per map, with leading search dimensions before
        target = target.expand(torch.broadcast_shapes(target.shape, maps))
    except RuntimeError:
        raise GADInputError(
            f"target_area of shape {tuple(target.shape)} for maps of leading shape {tuple(maps)}: give one area, "
            "or one per map (leading dimensions before them search several targets per map)"
        ) from None
    lo = torch.zeros(target.shape, dtype=torch.long, device=original_map.device)
    hi = positive.flatten(-2).sum(-1).expand(target.shape)
    # top_k_mask's pixels, from one ranking instead of a top-k per step; int32 (fewer bytes
    # held through the search): every rank is below H x W
    ranks = pixel_ranks(original_map).int()
    h, w = original_map.shape[-2:]
    device = original_map.device if device is None else torch.device(device)
    # Each row's pixels in rank order (a pixel that is not positive last: never taken), with the
    # leftmost and rightmost column among the row's first j: the top k pixels' first and last
    # column in a row are read at the row's count of ranks below k, so that a step of the search
    # finds the hull's rows from (maps, H) numbers, not from every pixel, and counts its area
    # without filling it (with the ranking, 2.9x the plain search at 224 px on the CPU:
    # benchmarks/speed.py --stage hulls).
    in_rank_order, cols = torch.where(positive, ranks, h * w).to(device).sort(-1)
    small = torch.int16 if w < 1 << 15 else torch.int32
    first_of, last_of = cols.cummin(-1).values.to(small), cols.cummax(-1).values.to(small)
    del cols
    searches = target.dim() - (original_map.dim() - 2)  # the targets' leading dimensions

    def edges_of_top(k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # k (*searches, *maps) -> (*maps, H, searches), as searchsorted takes it beside (*maps, H, W)
        per_map = k.to(device, in_rank_order.dtype).reshape(-1, *k.shape[searches:]).movedim(0, -1)
        count = torch.searchsorted(in_rank_order, per_map.unsqueeze(-2).expand(*per_map.shape[:-1], h, -1).contiguous())
        at = (count - 1).clamp(min=0)
        first = torch.where(count > 0, first_of.gather(-1, at).long(), w)
        last = torch.where(count > 0, last_of.gather(-1, at).long(), -1)
        return (e.movedim(-1, 0).reshape(-1, h) for e in (first, last))  # (searches x maps, H)

    while bool((active := lo < hi).any()):
        mid = (lo + hi) // 2
        reached = _hull_area(*edges_of_top(mid), w).view(target.shape).to(target.device).double() >= target
        hi, lo = torch.where(active & reached, mid, hi), torch.where(active & ~reached, mid + 1, lo)
    top = (ranks < lo[..., None, None]) & positive
    return original_map * top, hull_masks(top, device)
