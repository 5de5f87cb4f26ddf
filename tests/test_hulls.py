"""The batched hull fill equals scikit-image's convex_hull_image, mask for mask, on over
10,000 masks: random ones, attribution-like maps thresholded by both rules, and the
degenerate sets (empty, one pixel, collinear, touching the border)."""

import numpy as np
import pytest
import torch

from gadlib import GADInputError, hulls
from gadlib import consensus as cons
from gadlib.hulls import hull_mask, hull_masks, hull_matched_map, hulls_of, region_hulls
from gadlib.synthetic import blob_maps


@pytest.fixture(autouse=True, params=["chain", "pairs"])
def corner_search(request, monkeypatch):
    """Every test here twice: with the CPU's monotone chain, and with the test of every pair of
    candidates that CUDA runs, so that both find the same corners."""
    monkeypatch.setattr(hulls, "CORNER_SEARCH", request.param)
    monkeypatch.setattr(hulls, "PAIRS_CHUNK", 1 << 12)  # several passes, where a test has many masks
    return request.param


def _assert_same_as_skimage(masks: torch.Tensor, what: str) -> int:
    got = hull_masks(masks)
    ref = np.stack([hull_mask(m) for m in masks.reshape(-1, *masks.shape[-2:]).numpy()]).reshape(masks.shape)
    bad = np.nonzero((got.numpy() != ref).reshape(-1, *masks.shape[-2:]).any((1, 2)))[0]
    assert len(bad) == 0, (
        f"{what}: {len(bad)} of {len(ref.reshape(-1, *masks.shape[-2:]))} masks differ, first {bad[:5]}"
    )
    return int(np.prod(masks.shape[:-2]))


def _gradient_maps(gen: torch.Generator) -> torch.Tensor:
    """Saliency maps (|input gradient|, summed over channels) of a small random CNN."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 2),
    )
    x = torch.randn(600, 3, 40, 36, generator=gen, requires_grad=True)
    (g,) = torch.autograd.grad(net(x)[:, 0].sum(), x)
    return cons.reduce_channels(g)


def _degenerate() -> list[np.ndarray]:
    out = []
    for h, w in [(1, 1), (1, 7), (7, 1), (5, 6), (9, 4)]:
        out.append(np.zeros((h, w), bool))
        out.append(np.ones((h, w), bool))
        for r in range(h):  # one pixel everywhere, corners and borders included
            for c in range(w):
                m = np.zeros((h, w), bool)
                m[r, c] = True
                out.append(m)
    base = np.zeros((12, 12), bool)
    lines = [
        (slice(0, 1), slice(None)),
        (slice(None), slice(11, 12)),
        (slice(5, 6), slice(2, 9)),
        (slice(3, 10), slice(4, 5)),
    ]
    for rows, cols in lines:
        m = base.copy()
        m[rows, cols] = True
        out.append(m)
    for k in range(-11, 12):  # diagonals and anti-diagonals, every offset
        out.append(np.eye(12, k=k, dtype=bool))
        out.append(np.fliplr(np.eye(12, k=k, dtype=bool)))
    for step in (2, 3, 5):  # collinear with gaps, steep and shallow slopes
        m = base.copy()
        idx = np.arange(0, 12, step)
        m[idx, (idx * 7) // 11] = True
        out.append(m)
        out.append(m.T.copy())
    corners = base.copy()
    corners[0, 0] = corners[11, 11] = True
    out.append(corners)
    out.append(np.fliplr(corners).copy())
    return out


def test_equal_to_skimage_on_over_ten_thousand_masks():
    gen = torch.Generator().manual_seed(0)
    n = 0
    for (h, w), p in [((6, 9), 0.1), ((8, 8), 0.3), ((17, 13), 0.02), ((32, 32), 0.003), ((24, 20), 0.6)]:
        n += _assert_same_as_skimage(torch.rand(800, h, w, generator=gen) < p, f"random {h}x{w} p={p}")
    maps = blob_maps(1500, 48, 40, gen)
    grads = _gradient_maps(gen)
    for name, m in [("smooth", maps), ("gradient", grads)]:
        for rule, q, tau in [("top_q", 0.5, 0.1), ("top_q", 0.1, 0.1), ("frac_max", 0.5, 0.1), ("frac_max", 0.5, 0.5)]:
            n += _assert_same_as_skimage(cons.important(m, rule, q, tau), f"{name} maps, {rule} q={q} tau={tau}")
    for (h, w), p in [((20, 300), 0.01), ((300, 20), 0.01), ((8, 257), 0.05)]:  # wider than a uint8 column index
        n += _assert_same_as_skimage(torch.rand(60, h, w, generator=gen) < p, f"random {h}x{w} p={p}")
    n += _assert_same_as_skimage(cons.important(blob_maps(60, 224, 224, gen), "top_q", 0.5), "blob maps at 224 px")
    shapes = {}
    for m in _degenerate():
        shapes.setdefault(m.shape, []).append(m)
    for shape, group in shapes.items():
        n += _assert_same_as_skimage(torch.from_numpy(np.stack(group)), f"degenerate {shape}")
    assert n >= 10_000


def test_batched_hulls_keep_leading_dimensions_and_device():
    masks = torch.rand(2, 3, 10, 11) > 0.9
    out = hull_masks(masks)
    assert out.shape == masks.shape and out.dtype == torch.bool and out.device == masks.device
    assert torch.equal(out[1, 2], hull_masks(masks[1, 2]))  # a mask's hull does not depend on its batch
    assert hull_masks(torch.zeros(0, 5, 5, dtype=torch.bool)).shape == (0, 5, 5)
    for shape in [(3, 5, 5), (1, 1, 1), (2, 1, 9)]:  # a batch of only empty masks
        assert not hull_masks(torch.zeros(shape, dtype=torch.bool)).any()


def test_hulls_of_gives_every_rule_and_map_in_one_call():
    gen = torch.Generator().manual_seed(1)
    maps = {"a": torch.rand(2, 4, 16, 16, generator=gen), "b": torch.rand(2, 4, 16, 16, generator=gen) ** 4}
    out = hulls_of(maps, ["top_q", "frac_max"], 0.5, 0.2)
    assert set(out) == {(r, k) for r in ("top_q", "frac_max") for k in ("a", "b")}
    for (rule, name), hull in out.items():  # every entry its own rule's and map's hull
        assert torch.equal(hull, hull_masks(cons.important(maps[name], rule, 0.5, 0.2))), (rule, name)


def test_a_hulls_area_counted_from_its_rows_equals_its_filled_pixels():
    """The hull-matched search counts each hull's pixels from its rows' bounds without filling
    it: the same count as the filled hull, on random, blob and degenerate masks."""
    from gadlib.hulls import _edges, _hull_area

    gen = torch.Generator().manual_seed(3)
    groups = [torch.rand(500, 13, 17, generator=gen) > p for p in (0.5, 0.95, 0.995)]
    groups.append(cons.important(blob_maps(300, 24, 20, gen), "top_q", 0.5))
    groups += [torch.from_numpy(m.copy())[None] for m in _degenerate()]
    for masks in groups:
        assert torch.equal(_hull_area(*_edges(masks), masks.shape[-1]), hull_masks(masks).flatten(-2).sum(-1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_hulls_equal_cpu_hulls(monkeypatch):
    monkeypatch.setattr(hulls, "CORNER_SEARCH", None)  # each device its own: the pairs on CUDA, the chain here
    masks = cons.important(blob_maps(500, 64, 64, torch.Generator().manual_seed(2)), "top_q", 0.5)
    assert torch.equal(hull_masks(masks, device="cuda"), hull_masks(masks, device="cpu"))
    maps = blob_maps(40, 32, 28, torch.Generator().manual_seed(4)).view(2, 20, 32, 28)
    targets = torch.stack([hull_masks(maps > 0.5).flatten(-2).sum(-1), torch.full((2, 20), 30)])  # two searches
    on_cpu = hull_matched_map(maps, targets)
    for chosen in (hull_matched_map(maps, targets, device="cuda"), hull_matched_map(maps.cuda(), targets.cuda())):
        assert all(torch.equal(a.cpu(), b) for a, b in zip(chosen, on_cpu))


def test_the_hull_matched_baseline_keeps_the_fewest_top_pixels_whose_hull_reaches_the_target():
    """Against every k tried one at a time: the chosen k is the smallest whose hull (of the
    original's top k pixels) reaches the target area, on maps with ties (integer values) and
    zeros, a target of 0 (empty) and targets no k reaches (every positive pixel)."""
    gen = torch.Generator().manual_seed(5)
    maps = torch.randint(0, 6, (2, 12, 10, 9), generator=gen).float()  # ties and zeros
    n_pixels = 10 * 9
    every_k = torch.arange(n_pixels + 1)
    areas = torch.stack([hull_masks(cons.top_k_mask(maps, k)).flatten(-2).sum(-1) for k in every_k.tolist()], -1)
    assert bool((areas.diff(dim=-1) >= 0).all()), "the hull's area must never fall as k grows"
    target = torch.randint(0, n_pixels + 8, maps.shape[:-2], generator=gen)
    target[0, :3] = 0
    target[1, :3] = n_pixels + 1  # beyond any hull
    chosen_map, hull = hull_matched_map(maps, target)
    reaches = areas >= target[..., None]
    k = torch.where(reaches.any(-1), reaches.float().argmax(-1), (maps > 0).flatten(-2).sum(-1))
    expected = cons.top_k_mask(maps, k)
    assert torch.equal(chosen_map, maps * expected) and torch.equal(hull, hull_masks(expected))
    assert not hull[0, :3].any()  # target 0: no pixel, no hull
    assert torch.equal(hull[1, :3], hull_masks(maps[1, :3] > 0))  # every positive pixel


def test_a_hull_matched_target_broadcasts_over_the_maps_and_a_wrong_shape_is_one_line():
    """One area for every map searches as that area given per map; two searches of one map each
    as the two given one at a time; a shape that fits no map is refused in one line."""
    maps = blob_maps(12, 16, 14, torch.Generator().manual_seed(3)).view(3, 4, 16, 14)
    one = hull_matched_map(maps, 40)
    assert all(torch.equal(a, b) for a, b in zip(one, hull_matched_map(maps, torch.full((3, 4), 40))))
    per_column = hull_matched_map(maps, torch.tensor([10, 40, 70, 100]))
    assert torch.equal(per_column[1][:, 1], one[1][:, 1]) and not torch.equal(per_column[1], one[1])
    two = hull_matched_map(maps[0], torch.tensor([[25], [60]]))  # (2 searches, 1) against 4 maps
    for i, area in enumerate((25, 60)):
        assert torch.equal(two[1][i], hull_matched_map(maps[0], area)[1])
    with pytest.raises(GADInputError) as err:
        hull_matched_map(maps, torch.ones(5))
    assert "target_area of shape (5,) for maps of leading shape (3, 4)" in str(err.value)
    assert "\n" not in str(err.value)


def test_the_hull_matched_baseline_reaches_gads_hull_under_both_rules_and_any_consensus_q():
    """region_hulls matches each rule's GAD hull, also where the consensus keeps more than the
    hull rule's top half (consensus_q 0.7) and GAD's hull is larger than the original's: its
    hull is never smaller than GAD's, and removing its last pixel would make it so."""
    maps = blob_maps(40, 24, 20, torch.Generator().manual_seed(9)).view(5, 8, 24, 20)  # original + 4 supports
    for consensus_q in (0.5, 0.7):
        c = cons.consensus(maps, "top_q", consensus_q)
        views = cons.views(maps[0], c)
        hulls = region_hulls(views, ["top_q", "frac_max"], 0.5, 0.1)
        for rule in ("top_q", "frac_max"):
            gad, matched = (hulls[(rule, k)].flatten(-2).sum(-1) for k in ("gad", "base_hull"))
            assert (matched >= gad).all(), (consensus_q, rule)
            k = hulls[(rule, "base_hull")].new_zeros(8, dtype=torch.long)
            for i in range(8):  # the k it chose: the fewest top pixels whose hull reaches GAD's
                k[i] = next(n for n in range(24 * 20 + 1) if hull_masks(cons.top_k_mask(maps[0, i], n)).sum() >= gad[i])
            assert torch.equal(hulls[(rule, "base_hull")], hull_masks(cons.top_k_mask(maps[0], k))), (consensus_q, rule)
    # GAD's hull larger than the original's (its top pixels elsewhere), the case the hull rule's
    # threshold on the baseline's own pixels could not reach
    orig = torch.ones(1, 10, 10)
    orig[0, :2, :5] = 10.0  # the original's top 10 pixels: a 2 x 5 block
    orig[0, 9, 0] = orig[0, 9, 9] = orig[0, 5, 9] = 5.0  # the next: far apart
    gad = orig.clone()
    gad[0, :2, :5] = 0.0  # the consensus left the block out
    hulls = region_hulls({"orig": orig, "gad": gad, "base": orig}, ["top_q"], 0.1, 0.1)
    area = {k: int(hulls[("top_q", k)].sum()) for k in ("orig", "gad", "base_hull")}
    assert area["gad"] > area["orig"] and area["base_hull"] >= area["gad"], area
