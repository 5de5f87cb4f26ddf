"""Results that cannot be silently wrong: the evaluation split, the evaluation set, one
precision per method for the family, and run files that refuse to mix settings."""

import json
import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from gadlib import GADInputError, RunConfig, metrics, record, report, runfiles, stages
from gadlib.data import eval_indices, load_dataset, normalize
from gadlib.errors import GADWarning
from gadlib.synthetic import blob_maps

from conftest import assert_rs_by_hand


def _folder(root, per_class=20):
    for c, colour in (("cats", (200, 40, 40)), ("dogs", (40, 40, 200))):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (36, 30), (colour[0], i * 10, colour[2])).save(root / c / f"{c}_{i:02d}.png")
    return root


def _mtime(path):
    return os.stat(path).st_mtime_ns


# ---------------------------------------------------------------- 1. evaluation never trains
def test_larger_n_eval_never_evaluates_images_the_models_trained_on(tmp_path):
    """Train with a small n_eval, then ask for more: either the held-out split serves it (and no
    evaluation image is a training image of the cached models) or it is a one-line error. It
    never enlarges the test split under a classifier already trained on those images."""
    root = _folder(tmp_path / "pets")  # 20 per class: 6 held out, 14 train
    base = dict(
        profile="smoke",
        dataset="folder",
        data_dir=str(root),
        runs_dir=str(tmp_path / "runs"),
        alphas=[2.0],
        methods=["saliency"],
        precision="fp32",
    )
    small = RunConfig.build(**base, n_eval=4)
    trained_on = set(stages.model_family(small, load_dataset(small)).train_files)
    original = runfiles.RunFiles(small).original
    stamp = _mtime(original)
    for n_eval in (12, 16):
        larger = RunConfig.build(**base, n_eval=n_eval)
        try:
            data = load_dataset(larger)
        except GADInputError as err:
            assert n_eval > 12 and "\n" not in str(err)
            continue
        family = stages.model_family(larger, data)
        assert _mtime(original) == stamp  # the cached classifier is the one used
        _, ev = stages.eval_images(larger, data)
        assert len(ev) == n_eval and not set(ev.paths) & trained_on
        assert not set(ev.paths) & set(family.train_files)


def test_an_n_eval_the_split_cannot_serve_names_the_class_counts(tmp_path):
    root = _folder(tmp_path / "pets")
    cfg = RunConfig.build(
        profile="smoke", dataset="folder", data_dir=str(root), runs_dir=str(tmp_path / "runs"), n_eval=14
    )
    with pytest.raises(GADInputError, match=r"'cats' 6, 'dogs' 6 \(of 'cats' 20, 'dogs' 20") as err:
        load_dataset(cfg)
    assert "\n" not in str(err.value) and "at most 12" in str(err.value)


# ---------------------------------------------------------------- 2. CUB species coverage
def _cub_many_species(root, per_group=5, test_per_species=4):
    species = [f"{i:03d}.Kind{i}_Warbler" for i in range(1, per_group + 1)]
    species += [f"{i:03d}.Kind{i}_Sparrow" for i in range(per_group + 1, 2 * per_group + 1)]
    images, labels, split = [], [], []
    iid = 0
    for sid, name in enumerate(species, 1):
        (root / "images" / name).mkdir(parents=True)
        for j in range(2 + test_per_species):
            iid += 1
            rel = f"{name}/{j}.jpg"
            Image.new("RGB", (20, 20), (sid * 20, j * 30, 90)).save(root / "images" / rel)
            images.append(f"{iid} {rel}")
            labels.append(f"{iid} {sid}")
            split.append(f"{iid} {1 if j < 2 else 0}")
    (root / "images.txt").write_text("\n".join(images) + "\n")
    (root / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (root / "classes.txt").write_text("\n".join(f"{i} {n}" for i, n in enumerate(species, 1)) + "\n")
    (root / "train_test_split.txt").write_text("\n".join(split) + "\n")
    return root, species


def test_cub_evaluation_set_covers_every_species(tmp_path):
    root, species = _cub_many_species(tmp_path / "CUB_200_2011")
    cfg = RunConfig.build(
        profile="smoke", dataset="cub", data_dir=str(root), runs_dir=str(tmp_path / "runs"), n_eval=10
    )
    data = load_dataset(cfg)
    ev = data.test.subset(eval_indices(data.test, cfg.n_eval, cfg.seed))
    seen = {p.split("/")[-2] for p in ev.paths}
    assert seen == set(species)  # 5 per class, one image of each of the 5 species
    assert ev.labels.tolist() == [0] * 5 + [1] * 5


def test_evaluation_images_are_a_seeded_shuffle_of_the_test_split():
    from gadlib.data import Split

    split = Split(torch.zeros(40, 3, 4, 4, dtype=torch.uint8), torch.arange(40) % 2)
    a, b, c = eval_indices(split, 8, seed=0), eval_indices(split, 8, seed=0), eval_indices(split, 8, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (split.labels[a[:4]] == 0).all() and (split.labels[a[4:]] == 1).all()
    assert a[:4].tolist() != [0, 2, 4, 6]  # not simply the first images


# ---------------------------------------------------------------- 3. precision
def test_precision_rule_judges_the_worst_image_not_the_mean():
    from gadlib import precision

    cfg = RunConfig.build(profile="smoke")
    torch.manual_seed(0)
    ref = torch.rand(3, 2, 16, 12, 12) ** 2  # models, classes, images
    close = ref + 1e-6 * torch.rand_like(ref)
    one_bad = ref.clone()
    one_bad[2, 0, 5] = torch.rand(12, 12)  # one support, one image: another map entirely
    plan, agreement = precision.decide(
        {"saliency": ref, "input_x_gradient": ref, "guided_backprop": ref},
        {"saliency": close, "input_x_gradient": one_bad, "guided_backprop": close},
        cfg,
    )
    assert plan["guided_backprop"] == "bf16"
    assert agreement["input_x_gradient"]["consensus"] < 0.8
    assert plan["input_x_gradient"] == "fp32" and plan["saliency"] == "fp32"  # one pass, one precision
    # the mean over maps would have passed: 31 of 32 consensus masks are identical
    from gadlib import consensus as cons

    overlap = metrics.agreement(
        cons.consensus(ref, cfg.consensus_rule, cfg.consensus_q),
        cons.consensus(one_bad, cfg.consensus_rule, cfg.consensus_q),
    )
    assert overlap.mean() > 0.95 > overlap.min()


def test_precision_probe_judges_the_hull_matched_baseline_of_each_side():
    """The probe compares every hull the tables use, the hull-matched baseline's too: each side's
    search matched to its own GAD hull, as the complexity stage matches it."""
    from gadlib import consensus as cons
    from gadlib import precision
    from gadlib.hulls import hull_masks, hull_matched_map

    cfg = RunConfig.build(profile="smoke")
    gen = torch.Generator().manual_seed(3)
    ref = blob_maps(3 * 2 * 4, 16, 16, gen).view(3, 2, 4, 16, 16)  # models, classes, images
    low = ref * (1 + 0.3 * torch.rand(ref.shape, generator=gen))  # rounding noise, exaggerated
    got = precision.worst_agreement(ref, low, cfg)
    for rule in cfg.hull_rules:
        hulls, areas = [], []
        for maps in (ref, low):
            _, v = cons.regions(maps, cfg.consensus_rule, cfg.consensus_q, cfg.consensus_tau)
            areas.append(hull_masks(cons.important(v["gad"], rule, cfg.hull_q, cfg.hull_tau)).flatten(-2).sum(-1))
            hulls.append(hull_matched_map(v["orig"], areas[-1])[1])
        assert not torch.equal(*areas)  # the two sides' targets differ: each must be matched to its own
        assert got[f"hull {rule} base_hull"] == pytest.approx(float(metrics.agreement(*hulls).min()))
    assert min(got.values()) < 1  # the noise moves some mask, so the comparison has something to judge
    assert min(precision.worst_agreement(ref, ref.clone(), cfg).values()) == 1.0


def test_auto_precision_is_one_choice_per_method_for_the_whole_family(tmp_path, monkeypatch):
    """Forced to probe on any CPU: the plan must be what its own criterion says on the probe
    images (both classes), the same for every model."""
    from gadlib import precision
    from gadlib.attributions import attribution_maps
    from gadlib.models import build_model

    monkeypatch.setattr(precision, "bf16_available", lambda device: True)
    cfg = RunConfig.build(
        profile="smoke", runs_dir=str(tmp_path), methods=["saliency", "input_x_gradient", "guided_backprop"]
    )
    torch.manual_seed(0)
    models = [build_model("resnet18", 2, 32).eval() for _ in range(3)]
    x, labels = torch.randn(12, 3, 32, 32), torch.arange(12) // 6
    plan, agreement, probe = precision.plan(
        cfg, runfiles.RunFiles(cfg), models, ["a", "b", "c"], x, labels, torch.device("cpu"), "cpu"
    )
    idx = probe[0]
    assert set(labels[idx].tolist()) == {0, 1}
    ref = attribution_maps(models, x[idx], cfg.methods, ig_steps=cfg.ig_steps, precision="fp32", progress=False)
    low = attribution_maps(models, x[idx], cfg.methods, ig_steps=cfg.ig_steps, precision="bf16", progress=False)
    worst = {}
    for m in cfg.methods:
        worst[m] = min(precision.worst_agreement(ref[m], low[m], cfg).values())
        assert worst[m] == pytest.approx(min(agreement[m].values()))
    assert plan["guided_backprop"] == ("bf16" if worst["guided_backprop"] >= precision.MIN_AGREEMENT else "fp32")
    # Saliency and Gradient x Input share one pass: bf16 only if both agree
    shared = "bf16" if min(worst["saliency"], worst["input_x_gradient"]) >= precision.MIN_AGREEMENT else "fp32"
    assert plan["saliency"] == plan["input_x_gradient"] == shared
    # a second call reads the stored decision instead of probing again
    again, _, probe_again = precision.plan(
        cfg, runfiles.RunFiles(cfg), models, ["a", "b", "c"], x, labels, torch.device("cpu"), "cpu"
    )
    assert again == plan and probe_again is None
    # a decision stored before the regions' version was in its key (before the hull-matched
    # baseline was judged) is not reused: the family is probed again
    files = runfiles.RunFiles(cfg)
    old = runfiles.stamp("precision", cfg, runfiles.PRECISION_FIELDS, models=["a", "b", "c"], device="cpu")
    runfiles.save(files.precision, {"plan": {m: "bf16" for m in cfg.methods}, "agreement": agreement}, old)
    anew, _, probe_anew = precision.plan(cfg, files, models, ["a", "b", "c"], x, labels, torch.device("cpu"), "cpu")
    assert anew == plan and probe_anew is not None


def _smoke(tmp_path, **kw):
    base = dict(
        profile="smoke",
        runs_dir=str(tmp_path / "runs"),
        figures_dir=str(tmp_path / "fig"),
        alphas=[2.0],
        n_eval=4,
        methods=["saliency", "integrated_gradients"],
        hull_rules=["top_q"],
        precision="fp32",
    )
    return RunConfig.build(**{**base, **kw})


def _through(cfg, data, upto="sensitivity"):
    family = stages.model_family(cfg, data)
    attr = stages.attributions(cfg, data, family)
    comp = stages.complexity(cfg, data, family, attr)
    if upto == "sensitivity":
        stages.sensitivity(cfg, data, family)
    return family, attr, comp


def test_forced_fp32_and_bf16_share_no_attribution_file_and_record_differently(tmp_path):
    fp32 = _smoke(tmp_path)
    data = load_dataset(fp32)
    _, attr32, _ = _through(fp32, data)
    record32 = record.run_record(fp32, report.run_results(fp32))
    files = runfiles.RunFiles(fp32)
    stamps = {m: _mtime(files.attributions(m)) for m in fp32.methods}

    bf16 = _smoke(tmp_path, precision="bf16")
    _, attr16, _ = _through(bf16, data)
    record16 = record.run_record(bf16, report.run_results(bf16))
    for m in fp32.methods:
        assert _mtime(files.attributions(m)) != stamps[m]  # recomputed, not reused
        assert attr32.keys[m] != attr16.keys[m]
        assert runfiles.load(files.attributions(m))[1]["inputs"]["precision"] == "bf16"
    assert record32["precision"] != record16["precision"]
    assert set(record16["precision"]["resnet18"].values()) == {"bf16"}
    for key in ("commit", "dirty", "versions", "device", "threads", "parameters"):
        assert key in record16


@pytest.mark.parametrize(
    "setting, other, shown", [("support_mode", "frozen", "'frozen'"), ("train_precision", "bf16", "'bf16'")]
)
def test_a_partial_reader_at_a_later_default_refuses_a_file_made_off_it(tmp_path, setting, other, shown):
    """stamp() leaves a LATER_DEFAULTS setting out at its default, so a reader at the default
    must still see that the file names another value (notebook 06 took a frozen run's rs.csv)."""
    at_default, off = _smoke(tmp_path), _smoke(tmp_path, **{setting: other})
    made, reader = (runfiles.stamp("sensitivity", c, runfiles.SENSITIVITY_FIELDS) for c in (off, at_default))
    assert setting in made["settings"] and setting not in reader["settings"]
    default = runfiles.normalise(runfiles.LATER_DEFAULTS[setting])
    for stored, expected, old, new in ((made, reader, shown, repr(default)), (reader, made, repr(default), shown)):
        with pytest.raises(GADInputError, match=f"made with {setting}={old} \\(this run: {new}\\)") as err:
            runfiles.check(Path("rs.csv"), stored, expected, partial=True)
        assert "\n" not in str(err.value)
    runfiles.check(Path("rs.csv"), made, made, partial=True)  # the same settings pass


def test_every_partial_reader_depends_on_every_later_default_setting():
    """check(partial=True) compares the later-default settings a file names, as if the reader
    depended on them: a reader whose fields lacked one would refuse its own run's file. Each
    function with such a reader is tied to the *_FIELDS it builds its expected stamps from."""
    import ast
    import inspect

    readers = {}  # function name -> the *_FIELDS constants it reads
    for module in (stages, report, record):
        for func in ast.walk(ast.parse(inspect.getsource(module))):
            if not isinstance(func, ast.FunctionDef):
                continue
            partial = [
                n
                for n in ast.walk(func)
                if isinstance(n, ast.keyword) and n.arg == "partial" and getattr(n.value, "value", None) is True
            ]
            if partial:
                fields = {n.attr for n in ast.walk(func) if isinstance(n, ast.Attribute) and n.attr.endswith("_FIELDS")}
                readers[f"{module.__name__}.{func.name}"] = (len(partial), fields)
    # notebook 05's hulls, notebook 06's rs.csv, rc.csv (its regions) and models.csv, RUN.json's controls
    assert {name: n for name, (n, _) in readers.items()} == {
        "gadlib.stages.sensitivity": 1,
        "gadlib.report.run_results": 3,
        "gadlib.record.controls_keys": 1,
    }
    for name, (_, fields) in readers.items():
        assert fields, name
        for f in fields:
            assert set(runfiles.LATER_DEFAULTS) <= set(getattr(runfiles, f)), (name, f)


# ---------------------------------------------------------------- 4. stale files
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    cfg = _smoke(tmp)
    data = load_dataset(cfg)
    _through(cfg, data)
    return tmp, data


@pytest.mark.parametrize(
    "change, value", [("consensus_q", 0.3), ("hull_q", 0.7), ("methods", ["saliency", "guided_backprop"])]
)
def test_a_changed_setting_is_recomputed_by_its_stage_or_named_by_later_ones(finished_run, change, value):
    tmp, data = finished_run
    cfg = _smoke(tmp)
    changed = _smoke(tmp, **{change: value})
    family = stages.model_family(changed, data)
    with pytest.raises(GADInputError, match=f"hulls.pt was made with {change}=") as err:
        stages.sensitivity(changed, data, family)  # notebook 05 alone
    assert "\n" not in str(err.value) and "04_complexity" in str(err.value)
    with pytest.raises(GADInputError, match=f"rs.csv was made with {change}="):
        report.run_results(changed)  # notebook 06 alone
    # notebook 04 recomputes its own output; then 05 recomputes its own
    comp = stages.complexity(changed, data, family, stages.attributions(changed, data, family))
    assert set(comp.rc["method"]) == set(changed.methods)
    rs = stages.sensitivity(changed, data, family)
    assert set(rs["method"]) == set(changed.methods)
    assert report.run_results(changed).rc.equals(comp.rc)
    # and the first settings are refused now, never mixed with the new rows
    with pytest.raises(GADInputError, match="was made with"):
        report.run_results(cfg)
    _through(cfg, data)  # restore for the next case


def test_each_rs_row_is_its_own_regions_logit_change_per_pixel(finished_run):
    """Notebook 05's rows, by hand from notebook 04's hulls: the target logit's change when the
    region is set to 0 (the fill), over its area; the supplementary region is the original's
    hull minus GAD's; a region's RS is undefined (NaN) exactly where it is empty."""
    tmp, data = finished_run
    cfg = _smoke(tmp)
    family = stages.model_family(cfg, data)
    rs = stages.sensitivity(cfg, data, family).set_index(["method", "hull_rule", "target", "mask", "image"])["rs"]
    hulls, _ = runfiles.load(runfiles.RunFiles(cfg).hulls)
    x = normalize(stages.eval_images(cfg, data)[1].images)
    checked = 0
    for (method, rule), h in hulls.items():
        regions = {"gad": h["gad"], "sup": h["orig"] & ~h["gad"], "base": h["base"], "base_hull": h["base_hull"]}
        for t in (0, 1):
            for kind, region in regions.items():
                got = [rs[(method, rule, t + 1, kind, i)] for i in range(len(x))]
                assert_rs_by_hand(got, family.original, x, region[t], t, (method, kind, t))
                checked += int(region[t].flatten(1).any(1).sum())
    assert checked > 0 and len(rs) == len(hulls) * 2 * 4 * len(x)


def test_a_changed_occlusion_fill_recomputes_rs_and_stops_the_tables(finished_run):
    tmp, data = finished_run
    cfg = _smoke(tmp)
    rs_zero = report.run_results(cfg).rs
    black = _smoke(tmp, occlusion_fill="black")
    with pytest.raises(GADInputError, match=r"rs.csv was made with occlusion_fill='zero' \(this run: 'black'\)"):
        report.run_results(black)
    rs_black = stages.sensitivity(black, data, stages.model_family(black, data))
    assert not rs_black["rs"].equals(rs_zero["rs"])
    assert report.run_results(black).rs["rs"].equals(rs_black["rs"])
    stages.sensitivity(cfg, data, stages.model_family(cfg, data))


def test_an_architecture_made_of_other_images_is_refused_by_the_tables(finished_run):
    """Notebook 06 tables every finished architecture of the run folder: one whose maps are of
    other evaluation images than the run's data (made before the image files changed at the same
    paths, with the same settings) is refused in one line, not tabled beside the others."""
    import dataclasses

    tmp, data = finished_run
    cfg = _smoke(tmp)
    assert report.run_results(cfg, data).archs == ["resnet18"]
    flipped = dataclasses.replace(data.test, images=data.test.images.flip(-1))  # every pixel where it was, mirrored
    with pytest.raises(GADInputError, match=r"rc.csv was made from the maps of other evaluation images") as err:
        report.run_results(cfg, dataclasses.replace(data, test=flipped))
    assert "\n" not in str(err.value) and "notebooks 02-05 for resnet18" in str(err.value)


def test_two_settings_in_one_run_folder_are_never_mixed_by_the_tables(finished_run):
    tmp, data = finished_run
    first = _smoke(tmp)
    second = _smoke(tmp, consensus_q=0.4)
    family = stages.model_family(second, data)
    stages.complexity(second, data, family, stages.attributions(second, data, family))  # 04 only
    with pytest.raises(GADInputError, match="rc.csv is not the one rs.csv was made from"):
        report.run_results(first)
    with pytest.raises(GADInputError, match="consensus_q=0.5 \\(this run: 0.4\\)"):
        report.run_results(second)
    _through(first, data)


def test_figures_refuse_a_file_the_tables_were_not_made_from(finished_run):
    from gadlib import report

    tmp, data = finished_run
    cfg = _smoke(tmp)
    results = report.run_results(cfg)
    files = runfiles.RunFiles(cfg)
    value, st = runfiles.load(files.consensus)
    runfiles.save(files.consensus, value, {**st, "key": "made-by-another-run"})
    with pytest.raises(GADInputError, match="consensus.pt is not the one rc.csv was made from"):
        report.make_figures(cfg, data, results)
    runfiles.save(files.consensus, value, st)
    assert all(p.is_file() for p in report.make_figures(cfg, data, results))


def test_notebook_06_tables_read_the_overlap_of_the_stored_gad_and_hull_matched_hulls(finished_run):
    """Each RC row's IoU of GAD's hull and the hull-matched baseline's is that of its own
    method, hull rule, class and image in hulls.pt, and a hull file of other rows is refused."""
    from gadlib import report
    from gadlib.tables import HULL_OVERLAP

    tmp, _ = finished_run
    cfg = _smoke(tmp)
    results = report.run_results(cfg)
    rows = report.with_hull_overlap(cfg, results)
    assert rows.drop(columns=HULL_OVERLAP).equals(results.rc)  # the same rows, one column more
    overlap = rows.set_index(["method", "hull_rule", "target", "image"])[HULL_OVERLAP]
    files = runfiles.RunFiles(cfg)
    hulls, st = runfiles.load(files.hulls)
    for (method, rule), kinds in hulls.items():
        g, b = kinds["gad"].flatten(2), kinds["base_hull"].flatten(2)
        by_hand = (g & b).sum(-1) / (g | b).sum(-1)  # (class, image); no hull here is empty
        for t in range(2):
            assert overlap.loc[(method, rule, t + 1)].to_numpy() == pytest.approx(by_hand[t].double().numpy())
    try:
        runfiles.save(files.hulls, hulls, {**st, "key": "made-by-another-run"})
        with pytest.raises(GADInputError, match="hulls.pt is not the one rc.csv was made from"):
            report.with_hull_overlap(cfg, results)
        runfiles.save(files.hulls, {k: hulls[k] for k in list(hulls)[1:]}, st)  # a method's hulls missing
        with pytest.raises(GADInputError, match="the stored hulls are not of the RC rows' images"):
            report.with_hull_overlap(cfg, results)
    finally:
        runfiles.save(files.hulls, hulls, st)


def test_notebook_06_leaves_no_figure_or_controls_file_of_another_run_beside_its_record(finished_run):
    """A folder that held a run of both architectures with controls, made again for resnet18
    without controls: vgg16's figures and every controls file are another run's, and go."""
    tmp, data = finished_run
    cfg = _smoke(tmp)
    out = cfg.figure_dir
    out.mkdir(parents=True, exist_ok=True)
    stale = [out / "fig3_consensus_vgg16.png", out / "fig1_logit_space_vgg16.png", out / "fig_controls_resnet18.png"]
    stale += [
        out / f"{name}_{arch}.{ext}"
        for name in ("controls_verdicts", "sanity")
        for arch in ("resnet18", "vgg16")
        for ext in ("csv", "md")
    ]
    for path in stale:
        path.write_text("an earlier run's")
    keep = out / "dataset_examples.png"  # notebook 01's, of this run
    keep.write_text("this run's")
    results = report.run_results(cfg)  # notebook 06, as it runs
    # make paper-comparison's file stays where it is of the tables made again, byte for byte
    comparison = out / "paper_comparison.md"
    current = f"a comparison\n\n{runfiles.key_comment(report.tables_stamp(cfg, results)['key'])}\n"
    comparison.write_text(current)
    report.write_tables(cfg, results)
    assert comparison.read_text() == current
    comparison.write_text(f"a comparison\n\n{runfiles.key_comment('0123456789abcdef')}\n")  # another run's tables
    report.write_tables(cfg, results)
    assert not comparison.exists()
    with pytest.warns(GADWarning, match="notebook 07's 9 table.* were removed") as said:
        written = record.write_run_record(cfg, results)
    assert "run notebook 07 again" in str(said[0].message)  # said, not removed unseen
    drawn = report.make_figures(cfg, data, results)
    assert written["controls_keys"] == {} and not [p.name for p in stale if p.exists()]
    assert keep.is_file() and all(p.is_file() for p in drawn)
    assert (out / "fig3_consensus_resnet18.png") in drawn


# ---------------------------------------------------------------- keys
def test_fingerprint_sees_buffers_and_numbers_are_normalised():
    from gadlib.models import build_model

    torch.manual_seed(0)
    m = build_model("resnet18", 2, 32)
    before = runfiles.fingerprint(m)
    m.bn1.running_mean += 1e-3  # a buffer, not a parameter
    assert runfiles.fingerprint(m) != before
    ints = RunConfig.build(profile="smoke", alphas=[2, 8], n_eval=8)
    floats = RunConfig.build(profile="smoke", alphas=[2.0, 8.0], n_eval=8.0)
    fields = runfiles.COMPLEXITY_FIELDS
    assert runfiles.stamp("x", ints, fields)["key"] == runfiles.stamp("x", floats, fields)["key"]
    assert (
        runfiles.stamp("x", ints, fields)["key"]
        != runfiles.stamp("x", RunConfig.build(profile="smoke", alphas=[2, 6]), fields)["key"]
    )


def test_train_precision_keeps_old_keys_at_auto_and_retrains_every_model_at_bf16():
    auto, bf16 = RunConfig.build(profile="smoke"), RunConfig.build(profile="smoke", train_precision="bf16")
    for stage, fields in (("original", runfiles.MODEL_FIELDS), ("support", runfiles.SUPPORT_FIELDS)):
        old, new = runfiles.stamp(stage, auto, fields), runfiles.stamp(stage, bf16, fields)
        assert "train_precision" not in old["settings"] and new["settings"]["train_precision"] == "bf16"
        assert runfiles.difference(old, new) == "train_precision='auto' (this run: 'bf16')"
    with pytest.raises(GADInputError, match="unknown train precision 'fp16': choose one of auto, fp32, bf16"):
        RunConfig.build(profile="smoke", train_precision="fp16")


def test_stamped_csv_reads_back_and_plain_pandas_skips_the_stamp(tmp_path):
    import pandas as pd

    df = pd.DataFrame({"a": [1, 2], "b": [0.5, float("nan")]})
    st = runfiles.stamp("x", RunConfig.build(profile="smoke"), ("seed",))
    runfiles.write_csv(df, tmp_path / "t.csv", st)
    back, got = runfiles.read_csv(tmp_path / "t.csv")
    assert got == st and back.equals(df)
    assert pd.read_csv(tmp_path / "t.csv", comment="#").equals(df)


# ---------------------------------------------------------------- committed results of today's code
# The runs the README presents as its latest results (the other folders in figures/ are history,
# kept as made); a sweep's record is each point's.
LATEST = (
    "synthetic-default",
    "synthetic-frozen",
    "cub-cpu",
    "catsdogs-cpu",
    "alphas-q",
    "alphas-q-birds",
    "alphas-q-catsdogs",
    "alpha-selection",
    "seeds",
    "seeds-birds",
    "seeds-catsdogs",
    "seeds-vgg16",
    "seeds-birds-vgg16",
    "seeds-catsdogs-vgg16",
)
# where each of record.definitions() is defined, to read it at a record's commit (records made
# before RUN.json carried `definitions` have only their commit)
SOURCES = {
    "decoder": ("gadlib/data.py", "DECODER_VERSION"),
    "targets": ("gadlib/training.py", "TARGETS_VERSION"),
    "regions": ("gadlib/hulls.py", "REGIONS_VERSION"),
    "control maps": ("gadlib/controls.py", "MAPS_VERSION"),
    "control rows": ("gadlib/controls.py", "ROWS_VERSION"),
    "sanity": ("gadlib/sanity.py", "VERSION"),
}


ROOT = Path(__file__).resolve().parents[1]


def _definitions_in(read) -> dict:
    """record.definitions() as the sources that `read(path)` gives define them."""
    import re

    found = {}
    for name, (path, constant) in SOURCES.items():
        value = re.search(rf"^{constant} = (\d+)", read(path), re.M)
        found[name] = int(value.group(1)) if value else None
    return found


def _definitions_at(commit: str) -> dict:
    import subprocess

    if subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT, capture_output=True).returncode:
        pytest.skip(f"commit {commit[:7]} is not in this clone's history")
    return _definitions_in(
        lambda path: (
            subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, capture_output=True, text=True).stdout
        )
    )


def test_reading_definitions_from_the_sources_gives_those_of_the_code():
    assert _definitions_in(lambda path: (ROOT / path).read_text()) == record.definitions()


@pytest.mark.parametrize("run", LATEST)
def test_the_latest_committed_results_were_made_under_the_current_definitions(run):
    """A change that bumps a definition (REGIONS_VERSION, ...) without making the committed runs
    again would leave the README's tables of the old code: this fails until they are made again."""
    folder = ROOT / "figures" / run
    records = [folder / "RUN.json"] if (folder / "RUN.json").is_file() else sorted(folder.glob("*/RUN.json"))
    assert records, f"{folder} has no run record"
    for path in records:
        made = json.loads(path.read_text())
        definitions = made.get("definitions") or _definitions_at(made["commit"])
        assert definitions == record.definitions(), (
            f"{path} was made under {definitions}: make {run} again with its README command"
        )


def test_the_record_names_the_result_files_a_run_read_back_instead_of_making(tmp_path):
    """A run whose models were trained by an earlier run (or, in a sweep, by its group's first
    point) takes seconds, not minutes: its RUN.json lists those files, and its README line says so.
    Only the files of its own settings count: another architecture's, alpha's or method's, or
    notebook 07's in a run without it, were not read."""
    import time

    import readme_tables

    cfg = _smoke(tmp_path)  # alphas [2], Saliency and Integrated Gradients
    a = cfg.arch
    made = {
        "data.pt": 100,
        f"{a}/models/original.pt": 100,
        f"{a}/models/support_2_2.pt": 100,
        f"{a}/attributions/saliency.pt": 100,
        f"{a}/hulls.pt": 300,  # made again by this run
        f"{a}/rc.csv": 300,
        f"{a}/controls.csv": 100,  # notebook 07's
        f"{a}/models/support_4_4.pt": 100,  # of other settings
        f"{a}/attributions/deconvolution.pt": 100,
        f"{a}/executed.txt": 100,  # not a result file
        "vgg16/models/original.pt": 100,  # an architecture this run did not run
    }
    for name, when in made.items():
        (cfg.run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (cfg.run_dir / name).write_text("")
        os.utime(cfg.run_dir / name, (when, when))
    back = [f"{a}/attributions/saliency.pt", f"{a}/models/original.pt", f"{a}/models/support_2_2.pt"]
    assert record.read_back(cfg, [a], [], began=200) == ["data.pt", *back]
    assert record.read_back(cfg, [a], [a], began=200) == ["data.pt", *back[:1], f"{a}/controls.csv", *back[1:]]
    assert record.read_back(cfg, [a], [a], began=50) == []
    assert len(record.read_back(cfg, [a], [], began=time.time())) == 6
    figures = tmp_path / "figures" / "a-run"
    figures.mkdir(parents=True)
    rec = json.loads((ROOT / "figures" / "synthetic-default" / "RUN.json").read_text())
    (figures / "RUN.json").write_text(json.dumps({**rec, "read_back": record.read_back(cfg, [a], [], 200)}))
    line = readme_tables.run_line(str(figures))
    assert "s in the notebooks (4 result files made before the run and read back, 2 of them trained models);" in line
    assert "read back" not in readme_tables.run_line("figures/synthetic-default")  # made before the field


@pytest.mark.parametrize("skew", [-3600.0, 3600.0])
def test_what_a_run_read_back_is_told_by_the_file_systems_clock_not_the_process_clock(tmp_path, monkeypatch, skew):
    """A Dask worker whose clock is an hour off the file server's: the files its run writes are
    made, a file linked from its group's first point (an old stamp) is read back."""
    import time

    from gadlib.runfolder import holding, run_started

    cfg = _smoke(tmp_path)
    a = cfg.arch
    linked, written = cfg.run_dir / a / "models" / "original.pt", cfg.run_dir / a / "rc.csv"
    linked.parent.mkdir(parents=True)
    linked.write_text("")
    os.utime(linked, (time.time() - 60, time.time() - 60))
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + skew)
    with holding(cfg):
        began = run_started(cfg.run_dir)
        written.write_text("")
        assert record.read_back(cfg, [a], [], began) == [f"{a}/models/original.pt"]


def test_a_tables_key_comment_is_read_back_as_written_and_stripped(tmp_path):
    """Stale-table checks (readme_tables, sweep effects) read the key `write_text` writes."""
    path = tmp_path / "t.md"
    runfiles.write_text("| a |\n|---|\n| 1 |\n", path, {"key": "0123abcd"})
    text = path.read_text()
    assert runfiles.read_key(text) == "0123abcd" and runfiles.strip_key(text) == "| a |\n|---|\n| 1 |"
    assert runfiles.read_key("| a |") is None
    assert runfiles.read_key(runfiles.key_comment("k1", "k2")) is None  # several keys: no one key
    assert runfiles.strip_key(f"x\n\n{runfiles.key_comment('k1', 'k2')}") == "x"
