import numpy as np
import pytest
import torch

from gadlib import consensus as cons
from gadlib import metrics
from gadlib.hulls import hull_mask, hull_masks, region_hulls


def test_top_q_keeps_the_largest_pixels_and_breaks_ties_by_position():
    m = torch.tensor([[3.0, 1.0], [1.0, 0.0]])
    assert cons.important(m, "top_q", 0.5).tolist() == [[True, True], [False, False]]
    # zero pixels are never important, even inside the top fraction
    assert cons.important(torch.zeros(2, 2), "top_q", 0.5).sum() == 0


def test_frac_max_rule():
    m = torch.tensor([[10.0, 1.0], [0.5, 0.0]])
    assert cons.important(m, "frac_max", tau=0.1).tolist() == [[True, True], [False, False]]  # >= tau x max
    # a map where the two rules disagree: frac_max keeps every pixel at least tau x the maximum,
    # however many, where top_q keeps half of them
    m = torch.tensor([[10.0, 9.0], [8.0, 0.5]])
    assert cons.important(m, "frac_max", tau=0.1).tolist() == [[True, True], [True, False]]
    assert cons.important(m, "frac_max", tau=0.85).tolist() == [[True, True], [False, False]]
    assert cons.important(m, "frac_max", tau=0.95).tolist() == [[True, False], [False, False]]
    assert cons.important(m, "top_q", 0.5).tolist() == [[True, True], [False, False]]


def test_consensus_is_intersection_and_gad_never_adds_pixels():
    # three models' 2 x 2 maps, each with its top half by hand: only the pixel (0, 0) is in all three
    maps = torch.tensor([[[4.0, 3.0], [2.0, 1.0]], [[4.0, 1.0], [3.0, 2.0]], [[3.0, 1.0], [2.0, 4.0]]])
    c = cons.consensus(maps, "top_q", 0.5)
    assert c.tolist() == [[True, False], [False, False]]
    assert torch.equal(cons.gad_map(maps[0], c), torch.tensor([[4.0, 0.0], [0.0, 0.0]]))
    maps = torch.rand(5, 3, 8, 8)
    maps[1:] = 0.9 * maps[:1] + 0.1 * maps[1:]  # models that mostly agree: a consensus of many pixels
    c = cons.consensus(maps, "top_q", 0.5)
    assert c.any() and (c.flatten(-2).sum(-1) < 32).all()  # a strict part of the original's top half
    g = cons.gad_map(maps[0], c)
    assert torch.equal(g, torch.where(c, maps[0], 0.0))  # the original map on the consensus, 0 elsewhere


def test_matched_area_baseline_is_the_originals_top_pixels_at_the_consensus_size():
    maps = torch.rand(5, 4, 8, 8)
    maps[1:] = 0.7 * maps[:1] + 0.3 * maps[1:]  # a consensus of several pixels, not the original's top ones
    c = cons.consensus(maps)
    n = c.flatten(-2).sum(-1)
    assert (n > 0).all()
    b = cons.matched_area_map(maps[0], c)
    assert torch.equal((b > 0).flatten(-2).sum(-1), n)
    kept = b > 0
    for i in range(4):  # the original's own largest pixels: every kept one above every dropped one
        assert maps[0, i][kept[i]].min() > maps[0, i][~kept[i]].max()
    assert not torch.equal(kept, c)  # not GAD's pixels (the consensus) under another name


def test_subset_hull_lies_inside_superset_hull():
    rng = np.random.default_rng(0)
    sup = rng.random((20, 20, 20)) > 0.8
    sub = sup & (rng.random((20, 20, 20)) > 0.5)
    h_sub, h_sup = hull_masks(torch.from_numpy(sub)), hull_masks(torch.from_numpy(sup))  # the pipeline's fill
    assert not (h_sub & ~h_sup).any()
    assert (h_sub & ~torch.from_numpy(sub)).any()  # hulls, not the pixels themselves
    assert all(torch.equal(h_sup[i], torch.from_numpy(hull_mask(sup[i]))) for i in range(20))  # scikit-image's


def test_degenerate_masks_have_defined_hulls():
    empty = np.zeros((6, 6), bool)
    assert hull_mask(empty).sum() == 0
    one = empty.copy()
    one[2, 3] = True
    assert hull_mask(one).sum() == 1
    line = empty.copy()
    line[1, 1] = line[1, 4] = True
    assert hull_mask(line)[1].tolist() == [False, True, True, True, True, False]
    hulls = hull_masks(torch.from_numpy(np.stack([empty, one, line])))  # the pipeline's fill
    assert torch.equal(hulls, torch.from_numpy(np.stack([hull_mask(m) for m in (empty, one, line)])))
    rc = metrics.rc(hulls, hulls[[1, 2, 2]])  # empty / point, point / line, line / line
    assert rc.tolist() == [0.0, 0.25, 1.0]
    assert torch.isnan(metrics.rc(hulls[1], hulls[0]))  # undefined against an empty original hull


def test_rc_is_one_when_gad_map_equals_original():
    m = torch.rand(2, 16, 16)
    same = torch.stack([m] * 5)  # every support gives the original's map
    c = cons.consensus(same)
    g = cons.gad_map(m, c)
    h_orig = hull_masks(cons.important(m))
    h_gad = hull_masks(cons.important(g))
    assert torch.equal(metrics.rc(h_gad, h_orig), torch.ones(2, dtype=torch.float64))


def test_same_top_q_rule_gives_rc_at_most_one_for_every_image():
    maps = torch.rand(5, 30, 12, 12) ** 3
    c = cons.consensus(maps, "top_q", 0.5)
    h_orig = hull_masks(cons.important(maps[0], "top_q", 0.5))
    h_gad = hull_masks(cons.important(cons.gad_map(maps[0], c), "top_q", 0.5))
    assert not (h_gad & ~h_orig).any()
    assert (metrics.rc(h_gad, h_orig) <= 1).all()


def test_top_k_mask_equals_ranking_every_pixel_with_ties_and_per_map_k():
    gen = torch.Generator().manual_seed(0)
    maps = torch.randint(0, 4, (3, 7, 9, 8), generator=gen).float()  # many ties and zeros
    for k in [0, 1, 5, 36, 72, 100]:
        assert torch.equal(cons.top_k_mask(maps, k), (cons.pixel_ranks(maps) < k) & (maps > 0))
    per_map = torch.randint(0, 73, (3, 7), generator=gen)
    assert torch.equal(cons.top_k_mask(maps, per_map), (cons.pixel_ranks(maps) < per_map[..., None, None]) & (maps > 0))
    per_family = torch.randint(0, 73, (3,), generator=gen)  # k's dimensions lead, as they always did
    assert torch.equal(
        cons.top_k_mask(maps, per_family), (cons.pixel_ranks(maps) < per_family[:, None, None, None]) & (maps > 0)
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_notebook_04s_masks_and_areas_on_cuda_equal_the_cpus():
    """stages.complexity runs on the GPU when there is one: its masks, the hull-matched
    baseline's search and RC must be the CPU's, ties at the top-q threshold, zero pixels and
    empty hulls included."""
    torch.manual_seed(0)
    maps = torch.randint(0, 8, (5, 2, 24, 32, 32)) / 8  # eight values: ties at every threshold
    maps[:, :, :, :6] = 0  # zero pixels: never important
    maps[:, :, 0] = 0  # an all-zero map: empty hull, RC NaN
    out = {}
    for device in ("cpu", "cuda"):
        c, views = cons.regions(maps.to(device))
        hulls = region_hulls(views, ["top_q", "frac_max"], 0.5, 0.1)
        assert all(h.device.type == device for h in hulls.values())  # filled where the maps are
        rc = {rule: metrics.rc(hulls[(rule, "gad")], hulls[(rule, "orig")]).cpu() for rule in ("top_q", "frac_max")}
        rc |= {f"{rule} base_hull": metrics.rc(hulls[(rule, "base_hull")], hulls[(rule, "orig")]).cpu() for rule in rc}
        rc["area"] = metrics.area(hulls[("top_q", "base")]).cpu()
        out[device] = (c.cpu(), {k: v.cpu() for k, v in hulls.items()}, rc)
    assert ("frac_max", "base_hull") in out["cpu"][1]
    (c0, h0, rc0), (c1, h1, rc1) = out["cpu"], out["cuda"]
    assert torch.equal(c0, c1) and all(torch.equal(h0[k], h1[k]) for k in h0)
    assert all(torch.equal(rc0[r].nan_to_num(-1), rc1[r].nan_to_num(-1)) for r in rc0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_notebook_07s_ranks_on_cuda_equal_the_cpus():
    """Notebook 07 ranks on the models' device: the curves' pixel ranks (ties in one seeded
    order) and the sanity check's average ranks must be the CPU's, ties and zeros included."""
    from gadlib import faithfulness, sanity

    torch.manual_seed(0)
    maps = torch.randint(0, 8, (5, 24, 32, 32)) / 8  # eight values: ties everywhere
    maps[:, :, :6] = 0  # zero pixels, as outside a GAD map
    for rank in (lambda m: faithfulness.ranks_with_seeded_ties(m, seed=3), sanity.average_ranks):
        assert torch.equal(rank(maps), rank(maps.cuda()).cpu())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("share", [True, False])
def test_notebook_07s_curves_on_cuda_equal_the_cpus(share):
    """Deletion and insertion curves with the model and the maps on the GPU (the job tables stay
    on the CPU) equal those computed on the CPU, in float64, with and without shared inputs."""
    from gadlib import faithfulness

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 64, 2)
    ).double()
    x, maps = torch.randn(3, 3, 8, 8, dtype=torch.float64), torch.randint(0, 5, (4, 3, 8, 8)).double()
    maps[1] = maps[0]  # a repeated map: shared inputs
    fill = torch.full((1, 3, 1, 1), -0.5, dtype=torch.float64)
    on_cpu = faithfulness.curves(model, x, maps, 1, fill, step=0.1, batch_size=16, share=share)
    on_gpu = faithfulness.curves(model.cuda(), x, maps.cuda(), 1, fill, step=0.1, batch_size=16, share=share)
    for a, b in zip(on_cpu, on_gpu):
        torch.testing.assert_close(a, b.cpu(), rtol=1e-9, atol=1e-9)


def test_rs_regions_name_every_region_rs_occludes():
    h = {k: torch.zeros(1, 2, 2, dtype=torch.bool) for k in ("orig", "gad", "base", "base_hull")}
    assert set(cons.occlusion_regions(h)) == set(cons.RS_REGIONS) and len(cons.RS_REGIONS) == 4
