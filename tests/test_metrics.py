import math

import numpy as np
import pandas as pd
import pytest
import torch

from gadlib import GADInputError, metrics, tables
from gadlib.data import normalize


def test_rs_of_a_linear_model_equals_hand_value(linear_model):
    x = torch.randn(2, 3, 6, 6)
    mask = torch.zeros(1, 2, 6, 6, dtype=torch.bool)
    mask[0, 0, :2, :3] = True  # 6 pixels of image 0
    mask[0, 1, 5, 5] = True  # 1 pixel of image 1
    w = linear_model[1].weight.view(2, 3, 6, 6)
    got = metrics.rs(linear_model, x, mask, target=1, fill="zero")
    # occluding with zeros removes exactly sum over occluded pixels and channels of w * x
    for i, n in ((0, 6), (1, 1)):
        expected = (w[1] * x[i] * mask[0, i]).sum().abs() / n
        assert math.isclose(float(got[0, i]), float(expected), rel_tol=1e-5)


def test_rs_with_the_unoccluded_logits_given_equals_rs_computing_them(linear_model):
    """Notebooks 05 and 07 compute N_a(I) once and hand it to every RS call."""
    x, masks = torch.randn(5, 3, 6, 6), torch.rand(3, 5, 6, 6) > 0.6
    logits = metrics.unoccluded_logits(linear_model, x, batch_size=2)
    assert torch.allclose(logits, linear_model(x).detach(), atol=1e-6)
    for t in (0, 1):
        given = metrics.rs(linear_model, x, masks, t, batch_size=2, logits=logits)
        assert torch.equal(given, metrics.rs(linear_model, x, masks, t, batch_size=2))
    # the logits are used, not recomputed: other logits give other values
    shifted = metrics.rs(linear_model, x, masks, 0, logits=logits + 1)
    assert not torch.equal(shifted, metrics.rs(linear_model, x, masks, 0))


def test_rs_of_an_empty_mask_is_nan(linear_model):
    got = metrics.rs(linear_model, torch.randn(1, 3, 6, 6), torch.zeros(1, 1, 6, 6, dtype=torch.bool), 0)
    assert torch.isnan(got).all()


def test_rs_and_the_curves_run_the_model_as_trained_on_the_cpu_and_its_prepared_copy_agrees(monkeypatch):
    """On the CPU RS and the deletion and insertion curves run the model itself (the committed
    runs' rounding); on CUDA its prepared copy (batch norm folded, channels_last): the same
    values but for rounding, checked here on the CPU with a copy prepared for it."""
    from test_attributions import _with_random_batch_norm

    from gadlib import faithfulness
    from gadlib.attributions import for_evaluation, prepared
    from gadlib.models import build_model

    torch.manual_seed(0)
    model = _with_random_batch_norm(build_model("resnet18", 2, 32))
    assert for_evaluation(model) is model
    copy = prepared(model, torch.device("cpu")).to(memory_format=torch.channels_last)
    assert copy is not model and not any(isinstance(m, torch.nn.BatchNorm2d) for m in copy.modules())
    x, masks = torch.randn(6, 3, 32, 32), torch.rand(2, 6, 32, 32) > 0.7
    maps, fill = torch.rand(3, 6, 32, 32), metrics.occlusion_fill("zero", 3)
    got = {m: (metrics.rs(m, x, masks, 1), *faithfulness.curves(m, x, maps, 1, fill, 0.1)) for m in (model, copy)}
    for a, b in zip(got[model], got[copy]):
        assert a.shape == b.shape
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5 * float(a.abs().max()))
    # the model RS and the curves run is for_evaluation's: given the copy there, they equal the copy's
    calls = []
    for module in (metrics, faithfulness):
        monkeypatch.setattr(module, "for_evaluation", lambda m: calls.append(m) or copy)
    assert torch.equal(metrics.rs(model, x, masks, 1), got[copy][0])
    assert torch.equal(faithfulness.curves(model, x, maps, 1, fill, 0.1)[1], got[copy][2])
    assert sum(m is model for m in calls) == 2  # asked once by RS, once by the curves
    monkeypatch.undo()
    other = metrics.rs(_with_random_batch_norm(build_model("resnet18", 2, 32)), x, masks, 1)
    with pytest.raises(AssertionError):  # the tolerance tells another model's weights apart
        torch.testing.assert_close(other, got[model][0], rtol=1e-4, atol=1e-5 * float(got[model][0].abs().max()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_rs_on_cuda_runs_the_prepared_copy_and_agrees_with_the_cpu():
    from test_attributions import _with_random_batch_norm

    from gadlib.attributions import for_evaluation
    from gadlib.models import build_model

    torch.manual_seed(0)
    model = _with_random_batch_norm(build_model("resnet18", 2, 32))
    x, masks = torch.randn(6, 3, 32, 32), torch.rand(2, 6, 32, 32) > 0.7
    on_cpu = metrics.rs(model, x, masks, 1)
    on_gpu = model.cuda()
    copy = for_evaluation(on_gpu)
    assert copy is not on_gpu and copy.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    # TF32 convolutions (cuDNN's default on recent GPUs) round more than fp32
    scale = float(on_cpu.abs().max())
    torch.testing.assert_close(metrics.rs(on_gpu, x, masks, 1), on_cpu, rtol=1e-2, atol=1e-3 * scale)


def test_ground_truth_scores():
    m = torch.zeros(4, 4)
    m[0, 0], m[3, 3] = 3.0, 1.0
    truth = torch.zeros(4, 4, dtype=torch.bool)
    truth[0, 0] = True
    assert float(metrics.mass_inside(m, truth)) == 0.75
    assert float(metrics.pointing_hit(m, truth)) == 1.0
    assert float(metrics.pointing_hit(m, truth.flip(0, 1))) == 0.0  # the peak is off this object
    # an all-zero map (an empty consensus) points nowhere, whatever lies at its first pixel
    zero = torch.zeros(2, 4, 4)
    assert metrics.pointing_hit(zero, truth.expand(2, 4, 4)).isnan().all()
    assert metrics.mass_inside(zero, truth.expand(2, 4, 4)).isnan().all()
    assert float(metrics.iou(truth, truth)) == 1.0
    empty = torch.zeros(4, 4, dtype=torch.bool)  # nothing to score, but two computations that agree
    assert metrics.iou(empty, empty).isnan() and float(metrics.agreement(empty, empty)) == 1.0
    # two overlapping masks of 6 and 4 pixels share 2: intersection 2 over union 8, either way round
    a = torch.zeros(4, 4, dtype=torch.bool)
    b = torch.zeros(4, 4, dtype=torch.bool)
    a[0, :3] = a[1, :3] = True
    b[1, 1:3] = b[2, 1:3] = True
    assert float(metrics.iou(a, b)) == float(metrics.iou(b, a)) == 0.25
    assert float(metrics.iou(a, torch.zeros_like(a))) == 0.0
    assert torch.isnan(metrics.iou(torch.zeros_like(a), torch.zeros_like(a)))


def test_table1_counts_and_layout():
    rows = pd.DataFrame(
        {
            "dataset": "d",
            "arch": "a",
            "method": ["saliency"] * 4 + ["integrated_gradients"] * 4,
            "target": [1, 1, 2, 2] * 2,
            "rc": [0.5, 1.0, 0.2, 0.3, 1.0, 1.0, float("nan"), 0.1],
        }
    )
    t = tables.table1(rows)
    assert list(t.columns) == ["S", "IG"]
    assert [r[2] for r in t.index] == ["Orig.1", "GAD 1", "Orig.2", "GAD 2"]
    assert t["S"].tolist() == [1, 1, 0, 2]
    assert t["IG"].tolist() == [2, 0, 0, 1]  # the NaN is left out


def test_table2_means_times_100():
    rows = pd.DataFrame(
        {
            "dataset": "d",
            "arch": "a",
            "method": "saliency",
            "target": [1, 1, 1, 2, 2],
            "mask": ["gad", "gad", "sup", "gad", "sup"],
            "rs": [0.01, 0.03, 0.005, float("nan"), 0.001],
        }
    )
    t = tables.table2(rows)
    assert t.loc[("d", "a", "GAD 1"), "S"] == 2.0
    assert t.loc[("d", "a", "Sup.1"), "S"] == 0.5


def test_direction_summary_leaves_out_undefined_rc_like_table1():
    k = 6  # copies of each image: a verdict needs 6 (stats.min_pairs)
    rc = pd.DataFrame(
        {
            "dataset": "d",
            "arch": "a",
            "method": "saliency",
            "target": [1, 1, 1] * k + [2] * k,
            "rc": [0.5, float("nan"), 1.2] * k + [0.3] * k,
            "consensus_share": 0.4,
        }
    )
    rs = pd.DataFrame(
        {
            "dataset": "d",
            "arch": "a",
            "method": "saliency",
            "target": [1] * 3 * k + [2] * 3 * k,
            "image": np.repeat(np.arange(k), 3).tolist() * 2,
            "mask": ["gad", "sup", "base"] * 2 * k,
            "rs": [2.0, 1.0, 2.0, 3.0, 1.0, 3.0] * (k // 2) + [2.5, 1.0, 2.5, 2.0, 0.5, 2.0] * (k // 2),
        }
    )
    row = tables.direction_summary(rc, rs, resamples=200).iloc[0]
    t1 = tables.table1(rc)["S"]
    assert row["share RC<1"] == 2 / 3 == (t1.loc[("d", "a", "GAD 1")] + t1.loc[("d", "a", "GAD 2")]) / t1.sum()
    # paired per image: GAD above the supplementary region in every pair, equal to the baseline in every pair
    assert row["RS GAD vs Sup"] == "holds" and row["RS GAD vs Base"] == "no difference"
    # class 1: half its images below 1 is no evidence; the classes are judged apart and both named
    assert row["RC<1 for most"] == "class 1 undecided, class 2 holds"
    # one image a class short of a verdict: every verdict says so
    few = tables.direction_summary(rc, rs[rs["image"] < k - 1], resamples=200).iloc[0]
    assert few["RS GAD vs Sup"] == few["RS GAD vs Base"] == "too few images"
    # rows of two hull rules given together are refused, not averaged into one verdict
    with pytest.raises(ValueError, match="two RS rows for one image"):
        tables.direction_summary(rc, pd.concat([rs, rs.assign(rs=rs["rs"] * 2)]), resamples=200)


def test_cluster_bootstrap_counts_an_image_seen_twice_once():
    """Each value duplicated within its cluster (one image under two settings): the interval is
    the one of the values themselves, not the narrower one of twice as many values."""
    import numpy as np

    from gadlib.stats import cluster_bootstrap, paired_bootstrap

    values = np.random.default_rng(1).normal(size=40)
    once = paired_bootstrap(values, 500, seed=3)
    twice = cluster_bootstrap(np.repeat(values, 2), np.repeat(np.arange(40), 2), 500, seed=3)
    assert (twice["n"], twice["low"], twice["high"]) == (40, once["low"], once["high"])
    naive = paired_bootstrap(np.repeat(values, 2), 500, seed=3)
    assert naive["high"] - naive["low"] < twice["high"] - twice["low"]


def test_fig1_has_one_panel_per_support_also_when_the_classes_have_their_own_alphas():
    import pandas as pd

    from gadlib.figures import logit_space_panels

    rows = [("original", 0.0, 0.0)] + [(w, 2.0, b) for b in (4.0, 8.0) for w in ("target", "support")]
    df = pd.DataFrame(rows, columns=["what", "alpha", "alpha_c2"])
    assert [title for _, _, title in logit_space_panels(df)] == [
        "original logits",
        "support, alpha=2 / 4",
        "support, alpha=2 / 8",
    ]


def test_the_black_fill_is_a_black_pixel_in_the_models_input_space():
    """The "black" fill occludes with what a black image becomes after the pipeline's normalisation (the
    fill sweeps use it), "zero" with 0 there, and a fill for other than three channels is refused."""
    black = normalize(torch.zeros(1, 3, 1, 1, dtype=torch.uint8))
    torch.testing.assert_close(metrics.occlusion_fill("black"), black, rtol=0, atol=1e-7)
    assert torch.equal(metrics.occlusion_fill("zero", 1), torch.zeros(1, 1, 1, 1))
    with pytest.raises(GADInputError, match="'black' is for ImageNet-normalised RGB"):
        metrics.occlusion_fill("black", 1)


def test_the_papers_rs_direction_is_undefined_where_a_class_has_no_supplementary_region():
    """Table 2's Sup.k mean is NaN where no image of class k has a supplementary region: the paper's
    'GAD's RS above Sup' is then undefined, not False (which reads as a failure)."""
    idx = pd.MultiIndex.from_product([["d"], ["a"], ["Orig.1", "GAD 1", "Orig.2", "GAD 2"]])
    t1 = pd.DataFrame({"S": [1, 3, 0, 4], "D": [2, 2, 2, 2]}, index=idx)
    idx2 = pd.MultiIndex.from_product([["d"], ["a"], ["Sup.1", "GAD 1", "Sup.2", "GAD 2"]])
    t2 = pd.DataFrame({"S": [1.0, 2.0, float("nan"), 3.0], "D": [1.0, 2.0, 4.0, 3.0]}, index=idx2)
    d = tables.paper_direction(t1, t2).set_index("method")
    assert d.loc["S", "RS GAD > Sup"] == "undefined" and d.loc["D", "RS GAD > Sup"] is False
    # the other class failing decides, whatever the class without a mean
    t2.loc[("d", "a", "Sup.1"), "S"] = 5.0
    assert str(tables.paper_direction(t1, t2).set_index("method").loc["S", "RS GAD > Sup"]) == "False"
    assert d.loc["S", "share RC<1"] == 7 / 8 and d.loc["D", "share RC<1"] == 0.5
