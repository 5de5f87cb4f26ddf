"""The controls of notebook 07 (issue #8): alpha = 0 supports, frozen training mode, SmoothGrad,
deletion and insertion curves, paired bootstrap statistics."""

import dataclasses
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import torch

from gadlib import RunConfig, controls, faithfulness, runfiles, stages, stats
from gadlib.attributions import map_agreement, smoothgrad_maps
from gadlib.data import load_dataset
from gadlib.errors import GADWarning
from gadlib.models import build_model
from gadlib.training import distanced_targets, train_support


def test_alpha_zero_targets_are_the_original_logits():
    z = torch.randn(10, 2)
    labels = torch.tensor([0, 1] * 5)
    assert torch.equal(distanced_targets(z, labels, (0.0, 0.0)), z)
    assert not torch.equal(distanced_targets(z, labels, (2.0, 2.0)), z)


def _bn_stats(model):
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k}


@pytest.mark.parametrize("mode, unchanged", [("frozen", True), ("train", False)])
def test_frozen_mode_leaves_batch_norm_statistics_alone(mode, unchanged):
    torch.manual_seed(0)
    original = build_model("resnet18", 2, 32).eval()
    images = (torch.rand(16, 3, 32, 32) * 255).to(torch.uint8)
    support, _ = train_support(original, images, torch.randn(16, 2), epochs=1, lr=1e-3, batch_size=8, mode=mode)
    before, after = _bn_stats(original), _bn_stats(support)
    same = all(torch.equal(before[k], after[k]) for k in before)
    assert same == unchanged
    assert any(not torch.equal(a, b) for a, b in zip(original.parameters(), support.parameters()))  # it trained


def test_bootstrap_interval_contains_the_true_difference_and_verdicts_follow_it():
    rng = np.random.default_rng(1)
    diff = 0.3 + rng.normal(size=400)
    s = stats.paired_bootstrap(diff, resamples=2000, seed=0)
    assert s["low"] < 0.3 < s["high"] and s["low"] > 0 and s["n"] == 400
    assert stats.verdict(s["low"], s["high"], s["n"]) == "holds"
    assert stats.verdict(-0.2, -0.1, 400) == "fails"
    assert stats.verdict(-0.1, 0.2, 400) == "undecided (interval contains 0)"
    again = stats.paired_bootstrap(np.append(diff, np.nan), resamples=2000, seed=0)
    assert again == s  # NaN pairs are left out; seeded, so the same interval


@pytest.mark.parametrize("level", [0.9, 0.95, 0.99, 1 - 0.05 / 20])
def test_a_verdict_needs_as_many_pairs_as_a_sign_test_needs_to_show_a_side(level):
    """Below min_pairs even pairs all on one side are not shown (two-sided exact sign test), yet
    the percentile bootstrap of so few gives a one-sided interval: the verdict says too few."""
    n = stats.min_pairs(level)
    assert 2 * 0.5**n <= 1 - level < 2 * 0.5 ** (n - 1)
    for k, word in ((n - 1, stats.TOO_FEW), (n, stats.HOLDS)):
        s = stats.paired_bootstrap(np.linspace(0.1, 0.2, k), resamples=2000, seed=0, level=level)
        assert s["low"] > 0 and s["n"] == k  # the interval alone would say "holds"
        assert stats.verdict(s["low"], s["high"], s["n"], level) == word
        assert stats.verdict(-s["high"], -s["low"], s["n"], level) == (stats.FAILS if k == n else stats.TOO_FEW)
    one = stats.paired_bootstrap([0.5])
    assert one["low"] == one["high"] == 0.5 and stats.verdict(one["low"], one["high"], 1) == stats.TOO_FEW
    assert stats.verdict(np.nan, np.nan, 0) == stats.UNDEFINED
    assert stats.min_pairs() == 6


def test_equivalence_bound_is_the_tost_margin_as_a_share_of_the_control():
    """Two one-sided tests at 5% show |mean difference| < m exactly where the 90% interval lies
    within (-m, m): the bound is the farther end of the 90% interval of mean(diff) / mean(control)."""
    assert stats.equivalence_bound(np.full(50, 0.3), np.full(50, 10.0)) == pytest.approx(0.03)
    assert stats.equivalence_bound(np.full(50, -0.3), np.full(50, 10.0)) == pytest.approx(0.03)
    rng = np.random.default_rng(2)
    # the control's own spread widens the interval of the ratio: more than 3% for a constant difference
    assert stats.equivalence_bound(np.full(400, 0.3), 10.0 + 5 * rng.normal(size=400)) > 0.031
    diff, control = rng.normal(size=400), 4.0 + rng.normal(size=400)
    bound = stats.equivalence_bound(diff, control)
    # about |ratio| + 1.645 standard errors of the ratio (the delta method)
    ratio = diff.mean() / control.mean()
    se = np.std(diff - ratio * control) / np.sqrt(400) / control.mean()
    assert bound == pytest.approx(abs(ratio) + 1.645 * se, rel=0.1)
    # a pair with either value missing is left out; no share of a control whose mean is not above 0
    assert stats.equivalence_bound(np.append(diff, [np.nan, 9.0]), np.append(control, [1.0, np.nan])) == bound
    assert np.isnan(stats.equivalence_bound(diff, -control))
    # a control whose mean is above 0 but not in every resample: no share either
    spread = np.tile([10.0, -9.5], 20)
    assert spread.mean() > 0 and np.isnan(stats.equivalence_bound(np.zeros(40), spread))
    assert np.isnan(stats.equivalence_bound([np.nan], [1.0]))


def _linear(weights):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(weights.numel(), 2, bias=False))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[0] = weights.flatten()
    return model.eval()


def test_deletion_and_insertion_auc_of_a_hand_made_map_on_a_linear_model():
    """A 1x2x2 image of ones, weights 4, 3, 2, 1, the map ranks the pixels in that order, fill 0,
    steps of a quarter: deletion logits 10, 6, 3, 1, 0; insertion 0, 4, 7, 9, 10."""
    model = _linear(torch.tensor([4.0, 3.0, 2.0, 1.0]))
    x = torch.ones(1, 1, 2, 2)
    maps = torch.tensor([[[[0.9, 0.5], [0.3, 0.1]]]])  # (K=1, N=1, 2, 2)
    fractions, deletion, insertion = faithfulness.curves(model, x, maps, 0, torch.zeros(()), step=0.25)
    assert deletion[0, 0].tolist() == [10, 6, 3, 1, 0] and insertion[0, 0].tolist() == [0, 4, 7, 9, 10]
    by_hand = 0.25 * ((10 + 6) / 2 + (6 + 3) / 2 + (3 + 1) / 2 + (1 + 0) / 2)
    assert float(faithfulness.auc(fractions, deletion)) == pytest.approx(by_hand)
    assert float(faithfulness.auc(fractions, insertion)) == pytest.approx(0.25 * (2 + 5.5 + 8 + 9.5))


def test_curves_in_batches_equal_each_input_built_by_hand():
    """Batches that end mid-curve and hold several maps and images (only their distinct rank maps
    and images are moved to the model's device) give the curve of every input built one by one."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(100, 2)
    )
    x, maps = torch.randn(4, 3, 5, 5), torch.randn(3, 4, 5, 5)  # K=3 maps of N=4 images
    fill = torch.full((1, 3, 1, 1), -0.5)
    fractions, deletion, insertion = faithfulness.curves(model, x, maps, 1, fill, step=0.25, batch_size=7)
    ranks, counts = faithfulness.ranks_with_seeded_ties(maps), faithfulness.steps(25, 0.25)
    for k in range(3):
        for n in range(4):
            for s, count in enumerate(counts):
                changed = ranks[k, n] < count
                with torch.no_grad():
                    gone = model(torch.where(changed, fill, x[n])).squeeze(0)[1]
                    kept = model(torch.where(changed, x[n], fill)).squeeze(0)[1]
                assert float(deletion[k, n, s]) == pytest.approx(float(gone), abs=1e-5)
                assert float(insertion[k, n, s]) == pytest.approx(float(kept), abs=1e-5)
    assert fractions.tolist() == [0, 0.24, 0.48, 0.76, 1.0]  # round(25 x share) pixels of 25


def _shared_and_plain(model, x, maps, target, fill, step, batch_size):
    """The curves with shared inputs and evaluating every input (checked equal), the number of
    inputs the model saw for the former, and every input of the latter, in order."""
    seen = []
    hook = model[0].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].clone()))
    try:
        shared = faithfulness.curves(model, x, maps, target, fill, step=step, batch_size=batch_size)
        rows_shared = sum(len(t) for t in seen)
        seen.clear()
        plain = faithfulness.curves(model, x, maps, target, fill, step=step, batch_size=batch_size, share=False)
    finally:
        hook.remove()
    for a, b in zip(shared, plain):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    return shared, rows_shared, torch.cat(seen)


def test_curves_evaluate_each_distinct_input_once_and_equal_the_plain_way():
    """Sharing repeated inputs (the unchanged image, the filled image, two maps that change the
    same pixels at a step) gives the curves of evaluating every input, and the model sees each
    distinct input exactly once: as many rows as distinct inputs built by hand."""
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 2)
    ).double()
    x, fill = torch.randn(3, 3, 6, 6, dtype=torch.float64), torch.full((1, 3, 1, 1), -0.5, dtype=torch.float64)
    orig = torch.rand(3, 6, 6, dtype=torch.float64)
    top = orig * (orig >= orig.flatten(1).quantile(0.7, dim=1).view(3, 1, 1))  # its top 30%: a baseline-like map
    # the original with its 7th and 8th pixels swapped: its top 7 differ from the original's by one
    # pixel (a step changes 7 of the 36 pixels), every other step's are the same
    swapped = orig.clone().flatten(1)
    order = swapped.argsort(dim=1, descending=True)
    rows = torch.arange(3)
    swapped[rows, order[:, 6]], swapped[rows, order[:, 7]] = swapped[rows, order[:, 7]], swapped[rows, order[:, 6]]
    maps = torch.stack([orig, top, torch.rand(3, 6, 6, dtype=torch.float64), orig.clone(), swapped.view(3, 6, 6)])
    _, rows_shared, every = _shared_and_plain(model, x, maps, 1, fill, step=0.1, batch_size=16)
    assert len(every) == 2 * 5 * 3 * 11  # the plain way: kinds x maps x images x steps
    distinct = {t.numpy().tobytes() for t in every}
    assert rows_shared == len(distinct) < len(every) * 0.7
    first = faithfulness.same_sets(faithfulness.ranks_with_seeded_ties(maps).flatten(-2), faithfulness.steps(36, 0.1))
    assert (first[:, :, 0] == 0).all() and (first[3] == 0).all() and (first[4, :, 2] == 4).all()  # 0 px; copy; swap


@pytest.mark.parametrize("k, n, side", [(1, 1, 2), (2, 1, 2), (3, 2, 3)])
def test_curves_share_inputs_on_tiny_images_and_single_maps(k, n, side):
    """One map, one image, and images so small that several steps change no pixel or every
    pixel (2 x 2 in steps of 5%): the shared curves equal the plain ones, and each input is
    evaluated once, a deletion input and an insertion input sharing only the unchanged and the
    filled image (on such tiny images one map's top pixels can be another's bottom ones, which
    real maps do not give)."""
    torch.manual_seed(k * 10 + n)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * side * side, 2)).double()
    x, maps = torch.randn(n, 3, side, side, dtype=torch.float64), torch.rand(k, n, side, side, dtype=torch.float64)
    fill = torch.zeros((), dtype=torch.float64)
    shared, rows_shared, every = _shared_and_plain(model, x, maps, 0, fill, step=0.05, batch_size=5)
    common = {t.numpy().tobytes() for t in [*x, torch.zeros_like(x[0])]}  # unchanged images, filled image
    deletions = k * n * len(shared[0])  # the plain way evaluates every deletion input first
    keys = set()
    for i, t in enumerate(every):
        b = t.numpy().tobytes()
        keys.add(b if i < deletions or b in common else ("insertion", b))
    assert rows_shared == len(keys)


def test_deletion_curve_equals_quantus_pixel_flipping():
    """On single-channel inputs (where Quantus's features are pixels) with distinct map values."""
    import quantus

    torch.manual_seed(3)
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(36, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)
    ).eval()
    x = torch.randn(5, 1, 6, 6)
    a = torch.rand(5, 1, 6, 6)
    _, deletion, _ = faithfulness.curves(model, x, a[:, 0][None], 1, torch.zeros(()), step=4 / 36)
    theirs = quantus.PixelFlipping(
        features_in_step=4,
        perturb_baseline=0.0,
        normalise=False,
        abs=False,
        disable_warnings=True,
        display_progressbar=False,
    )(
        model=model,
        x_batch=x.numpy(),
        y_batch=np.ones(5, dtype=int),
        a_batch=a.numpy(),
        softmax=False,
        channel_first=True,
        device="cpu",
    )
    np.testing.assert_allclose(deletion[0, :, 1:].numpy(), np.array(theirs), rtol=1e-5, atol=1e-6)


def test_smoothgrad_of_a_linear_model_is_its_saliency_whatever_the_noise(linear_model):
    x = torch.randn(4, 3, 6, 6)
    smooth = smoothgrad_maps(linear_model, x, ["saliency", "input_x_gradient"], samples=3, noise=0.5)
    w = linear_model[1].weight.detach().view(2, 3, 6, 6)
    assert torch.allclose(smooth["saliency"], w.abs().sum(1)[:, None].expand(2, 4, 6, 6))
    # Gradient x Input: w times the mean of the noisy copies, with the noise drawn as NoiseTunnel
    # draws it (the global generator seeded with 0; image j's copies are rows 3j to 3j + 2)
    torch.manual_seed(0)
    sd = torch.full((12, 3, 6, 6), 0.5 * float(x.max() - x.min()))
    noisy = x.repeat_interleave(3, dim=0) + torch.normal(0, sd)
    ixg = (w[:, None] * noisy.view(4, 3, 3, 6, 6).mean(1)[None]).abs().sum(2)
    assert torch.allclose(smooth["input_x_gradient"], ixg, atol=1e-5)


def test_controls_stage_cached_equals_fresh_and_control_supports_differ(tmp_path):
    cfg = RunConfig.build(
        profile="smoke",
        runs_dir=str(tmp_path),
        figures_dir=str(tmp_path / "f"),
        n_eval=4,
        methods=["saliency", "guided_backprop"],
        precision="fp32",
        bootstrap=200,
    )
    data = load_dataset(cfg)
    family = stages.model_family(cfg, data)
    attr = stages.attributions(cfg, data, family)
    comp = stages.complexity(cfg, data, family, attr)
    first = controls.controls(cfg, data, family, attr, comp)
    assert set(first.rows["map"]) == {"orig", "gad", "sup", "base", "gad0", "smooth"}
    assert set(first.paired["GAD vs"]) == {"sup", "orig", "base", "gad0", "smooth"}
    models, fps = controls.control_family(cfg, data, family)
    assert len(models) == len(cfg.alphas) and not set(fps) & set(family.fingerprints)
    files = controls.RunFiles(cfg)
    files.controls_csv.unlink()
    files.control_maps.unlink()
    fresh = controls.controls(cfg, data, family, attr, comp)
    np.testing.assert_allclose(
        fresh.rows["value"].to_numpy(), first.rows["value"].to_numpy(), rtol=1e-6, equal_nan=True
    )
    # the rows now come from controls.csv: nothing scored again, and the same rows and tables
    with mock.patch.object(controls, "_score", side_effect=AssertionError("scored again")):
        cached = controls.controls(cfg, data, family, attr, comp)
    pd.testing.assert_frame_equal(cached.rows, fresh.rows)
    pd.testing.assert_frame_equal(cached.paired, fresh.paired)
    written = controls.write_tables(cfg, fresh, controls.sanity_check(cfg, data, family, attr))
    assert all((cfg.figure_dir / f"{name}.md").is_file() for name in written)
    # hulls of another definition (notebook 04 made again, the same maps): the rows are scored again
    other = dataclasses.replace(comp, key="hulls of another definition")
    with mock.patch.object(controls, "_score", wraps=controls._score) as score:
        again = controls.controls(cfg, data, family, attr, other)
    score.assert_called_once()
    assert again.stamp["inputs"]["complexity"] == other.key
    # the sanity check is of the very images: the same paths with other pixels are checked again
    sanity_st = runfiles.read_csv(files.sanity_csv)[1]
    flipped = dataclasses.replace(data, test=dataclasses.replace(data.test, images=data.test.images.flip(-1)))
    with mock.patch.object(controls.sanity, "cascade", wraps=controls.sanity.cascade) as cascade:
        controls.sanity_check(cfg, data, family, attr)
        cascade.assert_not_called()
        controls.sanity_check(cfg, flipped, family, attr)
    cascade.assert_called_once()
    assert runfiles.read_csv(files.sanity_csv)[1]["key"] != sanity_st["key"]


def test_paired_table_signs_each_metric_so_that_positive_favours_gad():
    import pandas as pd

    rows = pd.DataFrame(
        {
            "dataset": "d",
            "arch": "a",
            "hull_rule": "none",
            "method": "saliency",
            "target": 1,
            "image": list(range(6)) * 4,  # 6 images: a verdict needs 6 (stats.min_pairs)
            "metric": ["deletion"] * 12 + ["insertion"] * 12,
            "map": (["gad"] * 6 + ["orig"] * 6) * 2,
            "value": ([1.0] * 6 + [2.0] * 6) * 2,
        }
    )
    paired = controls.paired_table(rows, resamples=200).set_index("metric")
    assert paired.loc["deletion", "mean"] == 1.0 and paired.loc["deletion", "verdict"] == "holds"  # lower is better
    assert paired.loc["insertion", "mean"] == -1.0 and paired.loc["insertion", "verdict"] == "fails"
    fewer = controls.paired_table(rows[rows["image"] < 5], resamples=200)
    assert set(fewer["verdict"]) == {stats.TOO_FEW} and set(fewer["n"]) == {5}


def test_randomising_the_top_layer_changes_the_logits_the_same_way_in_every_model():
    from gadlib import sanity

    torch.manual_seed(0)
    a, b = build_model("resnet18", 2, 32).eval(), build_model("resnet18", 2, 32).eval()
    names = sanity.layers(a)
    assert names[0] == "fc" and names[-1] == "conv1"  # from the output back
    x = torch.randn(2, 3, 32, 32)
    ra, rb = sanity.randomised(a, names[:1], seed=5), sanity.randomised(b, names[:1], seed=5)
    with torch.no_grad():
        assert not torch.allclose(a(x), ra(x))
    assert torch.equal(ra.fc.weight, rb.fc.weight)  # the supports get the same random top layer
    assert torch.equal(ra.layer4[1].conv2.weight, a.layer4[1].conv2.weight)  # and nothing else changes


def test_with_every_layer_random_the_family_is_one_network_and_gads_map_is_the_baselines():
    """The cascade's last step re-initialises every layer of every model alike, so the original
    and its supports become one network (batch norm's statistics too): their consensus is the
    original's own top pixels, and GAD's randomised map is the matched-area baseline's. The
    sanity verdict at that step therefore compares two trained maps against one random map (what
    the README says of it)."""
    from gadlib import consensus, sanity
    from gadlib.attributions import attribution_maps

    torch.manual_seed(0)
    original = build_model("resnet18", 2, 32).eval()
    support = build_model("resnet18", 2, 32).eval()  # weights of its own, as a trained support's
    x = torch.randn(3, 3, 32, 32)
    every = sanity.layers(original)
    family = [sanity.randomised(m, every, seed=5) for m in (original, support)]
    for (name, a), b in zip(family[0].state_dict().items(), family[1].state_dict().values()):
        assert torch.equal(a, b), name
    maps = attribution_maps(family, x, ["saliency"], progress=False)["saliency"]
    _, views = consensus.regions(maps)
    assert torch.equal(views["gad"], views["base"])
    # one layer short of every layer, the models still differ, and so do GAD's and the baseline's maps
    partly = [sanity.randomised(m, every[:-1], seed=5) for m in (original, support)]
    _, views = consensus.regions(attribution_maps(partly, x, ["saliency"], progress=False)["saliency"])
    assert not torch.equal(views["gad"], views["base"])


def test_ssim_of_a_map_with_itself_is_one_and_with_noise_lower():
    from skimage.metrics import structural_similarity

    from gadlib import sanity

    m = torch.rand(2, 3, 16, 16)
    noise = torch.rand(2, 3, 16, 16)
    assert np.allclose(sanity.ssim(m, m), 1.0)
    assert np.allclose(sanity.ssim(m, 7 * m), 1.0)  # each map scaled by its maximum first
    got = sanity.ssim(m, noise)
    assert got.shape == (2, 3) and (got < 0.5).all()
    unit = lambda a: (a / a.max()).double().numpy()  # noqa: E731
    assert got[1, 2] == pytest.approx(structural_similarity(unit(m[1, 2]), unit(noise[1, 2]), data_range=1.0))


def test_the_batched_ssim_an_accelerator_runs_is_scikit_images():
    """sanity.ssim runs batched_ssim where the maps are on an accelerator: scikit-image's values,
    on dense, sparse (GAD-like, zero outside a region), all-zero and rectangular maps."""
    from skimage.metrics import structural_similarity

    from gadlib import sanity

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(40, 23, 30, generator=gen, dtype=torch.float64)
    y = (x + 0.5 * torch.rand(40, 23, 30, generator=gen, dtype=torch.float64)) ** 3
    y = y / y.amax((1, 2), keepdim=True)
    y[:10] *= y[:10] > 0.6  # sparse
    x[30:35], y[33:] = 0, 0  # all-zero maps, beside others and beside each other
    ref = [structural_similarity(a, b, data_range=1.0) for a, b in zip(x.numpy(), y.numpy())]
    assert sanity.batched_ssim(x, y).numpy() == pytest.approx(ref, abs=1e-12)
    assert sanity.batched_ssim(x[:1], x[:1]).item() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_ssim_on_cuda_equals_the_cpus():
    from gadlib import sanity

    m, noise = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert sanity.ssim(m.cuda(), noise.cuda()) == pytest.approx(sanity.ssim(m, noise), abs=1e-12)


def test_support_mode_keeps_old_keys_at_its_default_and_changes_them_when_frozen():
    from gadlib import runfiles

    fields = runfiles.SUPPORT_FIELDS
    train = runfiles.stamp("support", RunConfig.build(profile="smoke"), fields)
    frozen = runfiles.stamp("support", RunConfig.build(profile="smoke", support_mode="frozen"), fields)
    assert "support_mode" not in train["settings"] and frozen["settings"]["support_mode"] == "frozen"
    assert train["key"] != frozen["key"]
    assert runfiles.difference(train, frozen) == "support_mode='train' (this run: 'frozen')"


def test_spearman_gives_ties_their_average_rank():
    from scipy.stats import spearmanr

    from gadlib import sanity

    a = torch.zeros(2, 4, 4)
    a[:, :2] = torch.rand(2, 2, 4)  # half the pixels tied at 0, as outside a consensus
    b = torch.zeros(2, 4, 4)
    b[:, 2:] = torch.rand(2, 2, 4)
    ours = sanity.spearman(a, b)
    theirs = [spearmanr(a[i].flatten(), b[i].flatten()).statistic for i in range(2)]
    np.testing.assert_allclose(ours, theirs)
    assert (ours < 0).all()  # disjoint supports: no agreement, whatever the pixel order


def test_average_ranks_are_scipys_rankdata_exactly():
    """The sanity check's batched ranks equal scipy's rankdata (ties averaged) to the bit, on maps
    with many ties (zeros outside a region, a few repeated levels, -0.0 beside 0.0), distinct
    values and constant maps, so its Spearman correlations are those it computed before."""
    from scipy.stats import rankdata

    from gadlib import sanity

    g = torch.Generator().manual_seed(3)
    sparse = torch.rand(3, 2, 24, 24, generator=g) * (torch.rand(3, 2, 24, 24, generator=g) < 0.3)
    levels = torch.randint(-3, 4, (3, 2, 24, 24), generator=g).float()
    levels[0, 0, 0, :5] = -0.0
    constant = torch.full((1, 2, 24, 24), 0.25)
    with_nan = torch.rand(1, 2, 24, 24, generator=g)
    with_nan[0, 0, 3, 4] = torch.nan  # one map with a NaN (an overflow), one without
    for maps in (sparse, levels, torch.randn(3, 2, 24, 24, generator=g), constant, with_nan):
        ours = sanity.average_ranks(maps)
        assert ours.dtype == torch.float64 and ours.shape == (*maps.shape[:-2], 24 * 24)
        np.testing.assert_array_equal(ours.numpy(), rankdata(maps.flatten(-2).double().numpy(), axis=-1))
    assert (sanity.spearman(constant, sparse[:1]) == 0).all()  # a constant map correlates with nothing
    rho = sanity.spearman(with_nan, with_nan)
    assert rho[0, 0] == 0 and rho[0, 1] == pytest.approx(1)  # a map with NaN correlates 0, as before


def test_an_alpha_zero_gad_support_is_its_control_and_the_mode_reaches_training(tmp_path):
    """With alphas=[0] the GAD support and control 1 get the same targets, seed, epochs and mode,
    so the same weights: the control family is trained exactly like GAD's. In train mode batch
    norm's batch statistics move an alpha-0 support away from the original (in frozen mode its
    loss is 0 and nothing moves, so equal fingerprints there would prove nothing); in frozen mode
    the supports keep the original's batch-norm statistics."""
    data = None
    for mode in ("train", "frozen"):
        cfg = RunConfig.build(profile="smoke", runs_dir=str(tmp_path / mode), alphas=[0.0], support_mode=mode)
        data = data or load_dataset(cfg)
        family = stages.model_family(cfg, data)
        bn = {k: v for k, v in family.original.state_dict().items() if "running" in k}
        kept = all(torch.equal(v, family.supports[0].state_dict()[k]) for k, v in bn.items())
        if mode == "train":
            assert family.fingerprints[1] != family.fingerprints[0] and not kept  # it trained
            _, fps = controls.control_family(cfg, data, family)
            assert fps == family.fingerprints[1:]
        else:
            assert kept


def test_paired_table_takes_the_image_as_unit():
    """Two classes per image: the interval is over images (their differences averaged), so two
    perfectly opposite classes give a mean of 0 and no verdict of 'holds'."""
    import pandas as pd

    n = 20
    rows = pd.DataFrame(
        {
            "dataset": "d",
            "arch": "a",
            "hull_rule": "top_q",
            "method": "saliency",
            "metric": "rs",
            "target": np.repeat([1, 2, 1, 2], n),
            "image": np.tile(np.arange(n), 4),
            "map": ["gad"] * (2 * n) + ["sup"] * (2 * n),
            "value": np.concatenate([np.full(n, 2.0), np.full(n, 0.0), np.full(n, 1.0), np.full(n, 1.0)]),
        }
    )
    p = controls.paired_table(rows, resamples=200).iloc[0]
    assert p["n"] == n and p["mean"] == 0 and p["verdict"] == "no difference"


def test_curve_ties_are_taken_in_one_seeded_order_for_every_map():
    maps = torch.zeros(2, 1, 4, 4)
    maps[0, 0, 0, 0], maps[1, 0, 3, 3] = 1.0, 1.0
    r = faithfulness.ranks_with_seeded_ties(maps, seed=3)
    assert r[0, 0, 0, 0] == 0 and r[1, 0, 3, 3] == 0
    assert sorted(r[0].flatten().tolist()) == list(range(16))
    zeros_0 = r[0].flatten().argsort()[1:].tolist()  # the tie order, pixel by pixel
    assert zeros_0 != sorted(zeros_0)  # not raster order
    zeros_1 = r[1].flatten().argsort()[1:].tolist()
    assert [i for i in zeros_0 if i != 15] == [i for i in zeros_1 if i != 0]  # one order for both maps
    assert torch.equal(faithfulness.ranks_with_seeded_ties(maps, seed=3), r)  # seeded: the same again
    assert not torch.equal(faithfulness.ranks_with_seeded_ties(maps, seed=4), r)  # another seed, another order


def test_smoothgrad_on_the_engine_equals_captums_noise_tunnel():
    """The same noise (sd a share of the input range, samples as asked, drawn per chunk of
    images) and NoiseTunnel's mean before the channels are reduced: the engine's SmoothGrad is
    NoiseTunnel's up to rounding, for every method and both classes, over three chunks."""
    from test_attributions import _with_random_batch_norm

    from gadlib.config import METHODS

    from captum_reference import captum_smoothgrad

    torch.manual_seed(3)
    model = _with_random_batch_norm(build_model("resnet18", 2, 32))
    x = torch.rand(8, 3, 32, 32) * 3 - 1  # range about 3
    kwargs = dict(samples=3, noise=0.15, ig_steps=4, batch_size=3)
    theirs = captum_smoothgrad(model, x, list(METHODS), **kwargs)
    ours = smoothgrad_maps(model, x, list(METHODS), internal_batch=8, **kwargs)
    for method in METHODS:
        assert ours[method].shape == (2, 8, 32, 32)
        # folded batch norm rounds otherwise, which can move a ReLU's kink under one noisy sample:
        # then an image's maps move, by 7e-4 of the largest value (IG, on an EPYC with native
        # bf16) or 5.1e-3 (Saliency and Gradient x Input, on an AVX2 EPYC), every other by < 1e-6;
        # which and how many images depends on the CPU's kernels (one or two of these eight on
        # the EPYCs, native and AVX2-only), so half may (a wrong noise draw or mean moves all)
        top = float(theirs[method].abs().max())
        off = ((ours[method] - theirs[method]).abs().flatten(2).amax(2) / top).amax(0)  # per image
        assert (off > 1e-5).sum() <= len(x) // 2 and off.max() < 2e-2, (method, off)
        rho, jac = map_agreement(ours[method], theirs[method])
        assert rho.min() > 0.9999 and jac.min() > 0.99, method
    # the noise is real: other noise gives other maps
    other = smoothgrad_maps(model, x, ["input_x_gradient"], **{**kwargs, "noise": 0.3})
    assert not torch.allclose(other["input_x_gradient"], ours["input_x_gradient"], rtol=1e-2)
    # the precision asked for is the one used: bf16 moves the maps, a little
    half = smoothgrad_maps(model, x, ["input_x_gradient"], precision="bf16", **kwargs)["input_x_gradient"]
    assert not torch.equal(half, ours["input_x_gradient"])
    assert map_agreement(half, ours["input_x_gradient"])[0].min() > 0.9


def test_smoothgrad_keeps_within_the_memory_cap(linear_model, monkeypatch):
    """Where free memory holds only 12 inputs (as measured on CUDA), each pass gets at most
    12 // samples images' noisy copies and IG an internal batch of 12, and noise-free maps do
    not change."""
    from gadlib import attributions

    x = torch.rand(10, 3, 6, 6)
    free = smoothgrad_maps(linear_model, x, ["saliency", "integrated_gradients"], samples=3, ig_steps=8)
    seen = []
    real = attributions._maps_one_model

    def spy(model, noisy, methods, classes, ig_steps, ig_method, internal_batch, *args, **kwargs):
        seen.append((len(noisy), internal_batch))
        return real(model, noisy, methods, classes, ig_steps, ig_method, internal_batch, *args, **kwargs)

    monkeypatch.setattr(attributions, "_maps_one_model", spy)
    monkeypatch.setattr(attributions, "inputs_that_fit", lambda *args, **kwargs: 12)
    capped = smoothgrad_maps(linear_model, x, ["saliency", "integrated_gradients"], samples=3, ig_steps=8)
    assert [n for n, _ in seen] == [12, 12, 6] and {b for _, b in seen} == {12}  # 4 + 4 + 2 images x 3
    assert torch.equal(capped["saliency"], free["saliency"])  # a linear model's saliency has no noise
    # IG of a linear model is exact, and on the CPU the noise of 3 x 6 x 6 images does not depend
    # on the chunks (the generator's stream is the same for draws of multiples of 16 numbers)
    torch.testing.assert_close(capped["integrated_gradients"], free["integrated_gradients"], rtol=1e-6, atol=1e-7)


def test_train_precision_reaches_every_model_the_pipeline_trains(tmp_path, monkeypatch):
    """The original, each support, each control and each alpha candidate: every training the
    pipeline does is asked for the run's train_precision (training itself is stubbed out here)."""
    from gadlib import alpha_selection, training

    asked = []

    def no_training(model, images, loss_of, epochs, *args, precision="auto", desc="", **kwargs):
        asked.append((desc.split(" alpha")[0], precision))
        return [0.0] * epochs

    monkeypatch.setattr(training, "_fit", no_training)
    cfg = RunConfig.build(profile="smoke", runs_dir=str(tmp_path), train_precision="bf16")
    data = load_dataset(cfg)
    family = stages.model_family(cfg, data)
    controls.control_family(cfg, data, family)
    alpha_selection.candidate_report(cfg, data, family.original, candidates=[2.0, 3.0])
    kinds = [kind for kind, _ in asked]
    monkeypatch.setattr(stages.precision, "bf16_available", lambda device: False)
    with pytest.warns(GADWarning, match="train_precision=bf16 on a device without native bf16"):
        stages.model_family(cfg, data)
    assert {p for _, p in asked} == {"bf16"}
    assert kinds.count("train original") == 1 and kinds.count("support") == len(cfg.alphas)
    assert kinds.count("control") == len(cfg.alphas) and kinds.count("candidate") == 2


def test_models_trained_in_bf16_on_a_gpu_are_not_those_of_a_cpu_run(monkeypatch):
    """`auto` trains under bf16 autocast on CUDA and in fp32 on the CPU: the stamps of a GPU's
    original and supports say so (a CPU run of a copied folder trains its own), the CPU's stay
    what they were (no new input), and an explicit precision is in the settings already."""
    cfg = RunConfig.build(profile="smoke")
    cpu = stages.support_stamp(cfg, (2.0, 2.0), "original", "split", 0)
    assert stages.trained_on(cfg) == {} and "autocast" not in cpu["inputs"]
    monkeypatch.setattr(stages, "pick_device", lambda name: torch.device("cuda"))
    gpu = stages.support_stamp(cfg, (2.0, 2.0), "original", "split", 0)
    assert gpu["inputs"]["autocast"] == "bf16" and gpu["key"] != cpu["key"]
    assert runfiles.difference(cpu, gpu) == "other autocast than this run has (the models or an earlier stage changed)"
    assert stages.trained_on(RunConfig.build(profile="smoke", train_precision="fp32")) == {}
