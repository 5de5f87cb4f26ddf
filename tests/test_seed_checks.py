"""tools/seed_checks.py: the verdicts of the seed sweeps, seed by seed and pooled, from the files
each point's notebook 06 wrote; and its refusals of a sweep it cannot read as seeds."""

import json
import re
import shutil

import pandas as pd
import pytest

from conftest import ROOT

SWEEP = ROOT / "figures" / "seeds"


def small_sweep(tmp_path, seeds=(0, 1), status="done", name="seeds-copy", source=SWEEP):
    """A copy of a committed seed sweep (the synthetic one) with only the points of `seeds`."""
    sweep = tmp_path / name
    sweep.mkdir()
    lines = (source / "points.csv").read_text().splitlines(keepends=True)
    table = pd.read_csv(source / "points.csv", skiprows=1, dtype=str, keep_default_na=False)
    table = table[table["point"].isin([f"seed-{s}" for s in seeds])].assign(status=status)
    (sweep / "points.csv").write_text(lines[0] + table.to_csv(index=False))
    for seed in seeds:
        shutil.copytree(source / f"seed-{seed}", sweep / f"seed-{seed}")
    return sweep


def set_column(csv, column, value):
    """Every row's `column` set to `value`, the stamp (first line) kept."""
    stamp, _, body = csv.read_text().partition("\n")
    table = pd.read_csv(csv, comment="#")
    table[column] = value
    csv.write_text(stamp + "\n" + table.to_csv(index=False))


def test_the_committed_summary_is_what_the_seed_sweeps_say(capsys):
    """figures/seed_checks.md (the README embeds it) is made from the committed seed sweeps' files."""
    import seed_checks

    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")  # a value continued over lines
    sweeps = re.search(r"^SEED_SWEEPS \?= (.+)$", makefile, re.M).group(1).split()
    assert len(sweeps) == 6, sweeps
    seed_checks.main(*(str(ROOT / s) for s in sweeps))
    assert capsys.readouterr().out == (ROOT / "figures/seed_checks.md").read_text(), "run `make seed-checks`"


@pytest.mark.parametrize(
    "sweeps_var, size, committed, seeds, arch",
    [
        ("SIZE_SEED_SWEEPS", 224, "seed_checks_224.md", 4, "resnet18"),
        ("SIZE_SEED_SWEEPS_CATSDOGS", 224, "seed_checks_224_catsdogs.md", 3, "resnet18"),
        ("SIZE_SEED_SWEEPS_128", 128, "seed_checks_128.md", 4, "resnet18"),
        ("SIZE_SEED_SWEEPS_128_CATSDOGS", 128, "seed_checks_128_catsdogs.md", 3, "resnet18"),
        ("SIZE_SEED_SWEEPS_128_VGG16", 128, "seed_checks_128_vgg16.md", 3, "vgg16"),
        ("MACHINE_SWEEPS_VGG16", None, "seed_checks_machine_vgg16.md", 3, "vgg16"),
        ("EPOCH_SWEEPS_CATSDOGS_VGG16", None, "seed_checks_epochs_catsdogs_vgg16.md", 6, "vgg16"),
        ("EPOCH_SWEEPS_CATSDOGS", None, "seed_checks_epochs_catsdogs.md", 6, "resnet18"),
        ("EPOCH_SWEEPS_BIRDS", None, "seed_checks_epochs_birds.md", 6, "resnet18"),
        ("EPOCH_SWEEPS_BIRDS_VGG16", None, "seed_checks_epochs_birds_vgg16.md", 6, "vgg16"),
    ],
)
def test_the_committed_summaries_at_larger_sizes_are_what_the_size_sweeps_say(
    capsys, sweeps_var, size, committed, seeds, arch
):
    """figures/seed_checks_224*.md and seed_checks_128*.md (docs/sweeps.md embeds them), as `make
    seed-checks` writes them: birds at 224 and at 128 px over four seeds each (the size sweep's
    point, seed 0, and a seed sweep's three), cats vs dogs at 224 and 128 px over three, and
    VGG16 on birds at 128 px over three; VGG16 on birds at 64 px, three seeds, on the other machine
    kind, VGG16 and ResNet18 on cats vs dogs and on birds trained for 24 epochs, six
    seeds each (sweeps of the seed at one setting: no size to pick)."""
    import seed_checks

    makefile = (ROOT / "Makefile").read_text()
    sweeps = re.search(rf"^{sweeps_var} \?= (.+)$", makefile, re.M).group(1).split()
    where = ["--where", f"image_size={size}"] if size else []
    command = " ".join(["$(PY) tools/seed_checks.py", *where, f"$({sweeps_var})"])
    assert f"figures/{committed},{command})" in makefile
    seed_checks.main(*where, *(str(ROOT / s) for s in sweeps))
    out = capsys.readouterr().out
    assert out == (ROOT / "figures" / committed).read_text(), "run `make seed-checks`"
    assert re.search(rf"^\| all +\| {arch} +\| top 50% +\| +{seeds} \|", out, re.M), f"{seeds} seeds pooled"


def test_the_pooled_row_counts_every_seed_class_by_class(tmp_path):
    import seed_checks

    sweep = small_sweep(tmp_path)
    # seed 0: each method's classes split (1 fails, 1 undecided); seed 1: every cell holds
    column = "GAD vs Base(hull), both"
    set_column(sweep / "seed-0" / "baseline_check_top_q.csv", column, "class 1 fails, class 2 undecided")
    set_column(sweep / "seed-1" / "baseline_check_top_q.csv", column, "holds")
    rows = seed_checks.seed_rows(sweep, seed_checks.points(sweep))
    pooled, per_seed = seed_checks.pooled(rows), seed_checks.per_seed(rows)
    assert pooled[("seeds-copy", "resnet18", "top 50%")]["seeds"] == 2
    assert pooled[("seeds-copy", "resnet18", "top 50%")][column] == "10 / 5 / 5"
    # a second sweep of the same seeds: its own rows, and the sweeps pooled in "all"
    other = tmp_path / "other" / "seeds-again"
    other.parent.mkdir()
    shutil.copytree(sweep, other)
    rows |= seed_checks.seed_rows(other, seed_checks.points(other))
    pooled = seed_checks.pooled(rows)
    assert pooled[("seeds-again", "resnet18", "top 50%")][column] == "10 / 5 / 5"
    assert pooled[("all", "resnet18", "top 50%")][column] == "20 / 10 / 10"
    assert pooled[("all", "resnet18", "top 50%")]["seeds"] == 4
    assert list(pooled)[-2:] == [("all", "resnet18", "top 50%"), ("all", "resnet18", "10% of max")]
    assert per_seed[("seeds-copy", 0, "resnet18", "top 50%")][column] == "0 / 5 / 5"
    assert per_seed[("seeds-copy", 1, "resnet18", "top 50%")][column] == "10 / 0 / 0"
    # the test accuracy is the original's (alphas 0), as its models table gives it
    models = pd.read_csv(sweep / "seed-1" / "models.csv", comment="#")
    assert per_seed[("seeds-copy", 1, "resnet18", "top 50%")]["test accuracy"] == models["accuracy"].iloc[0]
    assert (models[["alpha_c1", "alpha_c2"]].iloc[0] == 0).all()


def test_a_supplementary_verdict_on_too_few_images_is_counted_as_too_few(tmp_path):
    """An earlier table's "RS GAD vs Sup" verdict on fewer images than a verdict needs (its
    baseline_check's "images with Sup") counts as too few, whatever it says; not its other classes."""
    import seed_checks

    sweep = small_sweep(tmp_path, seeds=(0,))
    set_column(sweep / "seed-0" / "direction_top_q.csv", "RS GAD vs Sup", "class 1 holds, class 2 fails")
    set_column(sweep / "seed-0" / "baseline_check_top_q.csv", "images with Sup", "5 / 6 of 64")
    counted = seed_checks.per_seed(seed_checks.seed_rows(sweep, seed_checks.points(sweep)))
    assert counted[("seeds-copy", 0, "resnet18", "top 50%")]["RS GAD vs Sup"] == "0 / 5 / 0 (5 too few images)"
    set_column(sweep / "seed-0" / "baseline_check_top_q.csv", "images with Sup", "6 / 6 of 64")
    counted = seed_checks.per_seed(seed_checks.seed_rows(sweep, seed_checks.points(sweep)))
    assert counted[("seeds-copy", 0, "resnet18", "top 50%")]["RS GAD vs Sup"] == "5 / 5 / 0"


def test_the_pooled_margins_are_those_of_every_seed_cell(tmp_path):
    import seed_checks

    sweep = small_sweep(tmp_path)
    # 5 methods x 2 classes per seed: seed 0's cells at 1% and 2%, seed 1's at 6% and 12%
    set_column(sweep / "seed-0" / "baseline_check_top_q.csv", "Base(hull) within", "1.0% / 2.0%")
    set_column(sweep / "seed-1" / "baseline_check_top_q.csv", "Base(hull) within", "6.0% / 12.0%")
    set_column(sweep / "seed-1" / "baseline_check_top_q.csv", "GAD / Base(hull) hull IoU", 0.5)
    rows = seed_checks.seed_rows(sweep, seed_checks.points(sweep))
    row = seed_checks.pooled(rows)[("seeds-copy", "resnet18", "top 50%")]
    assert (row["margin median"], row["margin largest"]) == ("4.0%", "12.0%")
    assert (row["margin within 5%"], row["margin within 10%"]) == ("10 of 20", "15 of 20")
    seed0 = pd.read_csv(sweep / "seed-0" / "baseline_check_top_q.csv", comment="#")["GAD / Base(hull) hull IoU"]
    assert row["GAD / Base(hull) IoU"] == pytest.approx((seed0.sum() + 5 * 0.5) / 10)
    assert seed_checks.per_seed(rows)[("seeds-copy", 1, "resnet18", "top 50%")]["margin median"] == "9.0%"


def test_the_pooled_ties_are_the_mean_of_every_seed_cell(tmp_path):
    """RC < 1 fails where GAD's hull is the original's (RC = 1) or larger: the pooled row gives
    each share's mean over the (seed, method) rows of baseline_check."""
    import seed_checks

    sweep = small_sweep(tmp_path)
    # seed 0's methods at 0% to 40% (mean 20%), seed 1's at 60%; RC > 1 only at seed 1, 1%
    for seed, (equal, larger) in ((0, ([0.0, 0.1, 0.2, 0.3, 0.4], 0.0)), (1, (0.6, 0.01))):
        set_column(sweep / f"seed-{seed}" / "baseline_check_frac_max.csv", "RC = 1", equal)
        set_column(sweep / f"seed-{seed}" / "baseline_check_frac_max.csv", "RC > 1", larger)
    row = seed_checks.pooled(seed_checks.seed_rows(sweep, seed_checks.points(sweep)))
    assert row[("seeds-copy", "resnet18", "10% of max")]["RC = 1 / RC > 1"] == "40% / 0.5%"


def test_the_controls_are_summed_over_the_seeds(tmp_path):
    import seed_checks

    sweep = small_sweep(tmp_path)
    for seed, counts in ((0, (1, 2, 3, 0)), (1, (4, 0, 1, 0))):
        csv = sweep / f"seed-{seed}" / "controls_verdicts_resnet18.csv"
        for column, n in zip(("holds", "fails", "undecided (interval contains 0)", "no difference"), counts):
            set_column(csv, column, n)
    found = seed_checks.control_counts(sweep, seed_checks.points(sweep))
    column = found["seeds-copy (resnet18)"]
    assert (column == "5 / 2 / 4").all() and ("rs", "gad0") in column.index
    # a point without controls among points with them is refused
    record = sweep / "seed-1" / "RUN.json"
    rec = json.loads(record.read_text())
    rec["controls_keys"] = {}
    record.write_text(json.dumps(rec))
    with pytest.raises(SystemExit, match="seed-1 has no controls"):
        seed_checks.control_counts(sweep, seed_checks.points(sweep))


def refusal(capsys, *sweeps) -> str:
    """The one-line error for the last of `sweeps`, the others being good: nothing is printed."""
    import seed_checks

    with pytest.raises(SystemExit) as stop:
        seed_checks.main(str(SWEEP), *map(str, sweeps))
    assert capsys.readouterr().out == ""  # nothing half-printed into the file make writes
    message = str(stop.value.code)
    assert "\n" not in message
    return message


def test_a_finished_point_whose_run_folder_is_not_here_is_read_as_done(tmp_path, capsys):
    """A seed sweep extended on a fresh clone (only the new seeds in its grid) marks its earlier
    points "run folder not on this machine": their figures are whole, and the summary of the
    sweep is the one of the same points done."""
    import seed_checks

    from gadlib.sweep import NOT_HERE

    summaries = []
    for i, statuses in enumerate((["done", "done"], [NOT_HERE, NOT_HERE], ["done", NOT_HERE])):
        (tmp_path / str(i)).mkdir()
        sweep = small_sweep(tmp_path / str(i))
        index = sweep / "points.csv"
        stamp = index.read_text().partition("\n")[0]
        table = pd.read_csv(index, skiprows=1, dtype=str, keep_default_na=False).assign(status=statuses)
        index.write_text(stamp + "\n" + table.to_csv(index=False))
        seed_checks.main(str(sweep))
        summaries.append(capsys.readouterr().out)
    assert summaries[0] == summaries[1] == summaries[2] and "seeds-copy" in summaries[0]


def test_a_point_not_done_stops_the_summary(tmp_path, capsys):
    sweep = small_sweep(tmp_path, status="failed")
    assert "seed-0 is failed, not done: run its sweep again" in refusal(capsys, sweep)


def test_a_point_of_other_code_stops_the_summary(tmp_path, capsys):
    sweep = small_sweep(tmp_path)
    record = sweep / "seed-1" / "RUN.json"
    rec = json.loads(record.read_text())
    rec["definitions"]["regions"] = -1
    record.write_text(json.dumps(rec))
    assert "point seed-1 is not of the current code (regions -1" in refusal(capsys, sweep)


def test_a_sweep_of_another_setting_or_of_one_seed_twice_stops_the_summary(tmp_path, capsys):
    assert "not the seed alone" in refusal(capsys, ROOT / "figures" / "alphas-q")
    sweep = small_sweep(tmp_path)
    shutil.copytree(sweep / "seed-0", sweep / "seed-0-again")  # seed 0 run twice, under two names
    points = sweep / "points.csv"
    row = next(line for line in points.read_text().splitlines() if line.startswith("seed-0,"))
    points.write_text(points.read_text() + row.replace("seed-0,seed-0,", "seed-0-again,seed-0-again,", 1) + "\n")
    assert "two points of one seed" in refusal(capsys, sweep)


def test_one_seed_of_the_same_data_in_two_sweeps_stops_the_summary(tmp_path, capsys):
    """The rows "all" pool every sweep: a seed given twice (a sweep and its copy, or a rerun beside
    it) would count its cells twice; the same seed of other data, or of other settings (another
    training length), is another run."""
    import seed_checks

    copy = small_sweep(tmp_path, seeds=(1,))
    assert "seed 1 of resnet18 is in two sweeps with the same settings" in refusal(capsys, copy)
    birds, longer = (seed_checks.points(ROOT / "figures" / s) for s in ("seeds-birds", "epochs-birds"))
    assert seed_checks.repeated_run(seed_checks.points(SWEEP) + birds + longer) is None


def test_a_missing_point_or_index_or_a_record_of_another_point_stops_the_summary(tmp_path, capsys):
    sweep = small_sweep(tmp_path)
    assert "does not exist: run the seed sweep first" in refusal(capsys, tmp_path / "nothing-here")
    shutil.rmtree(sweep / "seed-1")
    assert "seed-1 has no RUN.json" in refusal(capsys, sweep)
    shutil.copytree(sweep / "seed-0", sweep / "seed-1")  # seed 0's run where seed 1's should be
    assert "seed-1/RUN.json is not the run" in refusal(capsys, sweep)


def test_two_sweeps_of_one_name_keep_their_own_rows_and_one_sweep_twice_or_one_named_all_stops(tmp_path, capsys):
    import seed_checks

    assert "seeds is given twice among the sweeps" in refusal(capsys, SWEEP)
    assert "a sweep named 'all'" in refusal(capsys, small_sweep(tmp_path, name="all"))
    (tmp_path / "elsewhere").mkdir()
    # birds' seed 0 in a sweep named as the synthetic one: rows keyed by name alone would merge
    birds = ROOT / "figures" / "seeds-birds"
    copy = small_sweep(tmp_path / "elsewhere", seeds=(0,), name=SWEEP.name, source=birds)
    seed_checks.main(str(SWEEP), str(copy))
    table2 = capsys.readouterr().out.split("2. Seed by seed")[1].split("\n\n3.")[0]
    rows = [[c.strip() for c in line.split("|")[1:3]] for line in table2.splitlines() if "| resnet18 |" in line]
    assert ["elsewhere/seeds", "0"] in rows and [f"figures/{SWEEP.name}", "0"] in rows
    assert sum(r == ["elsewhere/seeds", "0"] for r in rows) == 2  # one per hull rule, seed 0 only


def test_a_file_left_by_an_earlier_run_stops_the_summary(tmp_path, capsys):
    sweep = small_sweep(tmp_path)
    csv = sweep / "seed-0" / "direction_top_q.csv"
    csv.write_text(re.sub(r'"key": "\w+"', '"key": "0123456789abcdef"', csv.read_text(), count=1))
    assert "was not made from the rows of the run" in refusal(capsys, sweep)


def test_a_sweep_run_on_two_kinds_of_machine_is_named(tmp_path, capsys):
    """A machine's kind alone moves verdicts: a sweep whose seeds ran on two, and the rows "all"
    where its sweeps did, are named under table 1; table 2 gives each seed's machine."""
    import seed_checks

    sweep = small_sweep(tmp_path)
    record = sweep / "seed-1" / "RUN.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "device": "cpu: Another CPU"}))
    rows = seed_checks.seed_rows(sweep, seed_checks.points(sweep))
    assert seed_checks.mixed_machines(rows) == ["seeds-copy: AMD EPYC (native bf16), seed 0; Another CPU, seed 1"]
    assert seed_checks.per_seed(rows)[("seeds-copy", 1, "resnet18", "top 50%")]["machine"] == "Another CPU"
    assert seed_checks.mixed_machines(seed_checks.seed_rows(SWEEP, seed_checks.points(SWEEP))) == []
    seed_checks.main(str(sweep))
    assert "- seeds-copy: AMD EPYC (native bf16), seed 0; Another CPU, seed 1\n" in capsys.readouterr().out
    # two sweeps, each of one machine: the rows "all" pool both kinds, and are named
    one, two = small_sweep(tmp_path, (0,), name="one"), small_sweep(tmp_path, (2,), name="two")
    record = two / "seed-2" / "RUN.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "device": "cpu: Another CPU"}))
    rows = {
        **seed_checks.seed_rows(one, seed_checks.points(one)),
        **seed_checks.seed_rows(two, seed_checks.points(two)),
    }
    assert seed_checks.mixed_machines(rows) == [
        "all, resnet18: AMD EPYC (native bf16), one (seed 0); Another CPU, two (seed 2)"
    ]
    # a sweep whose name begins with "all" is a sweep like any other, named before the rows "all"
    mixed = small_sweep(tmp_path, (0, 1), name="all-seeds")
    record = mixed / "seed-1" / "RUN.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "device": "cpu: Another CPU"}))
    rows = {
        **seed_checks.seed_rows(two, seed_checks.points(two)),
        **seed_checks.seed_rows(mixed, seed_checks.points(mixed)),
    }
    assert seed_checks.mixed_machines(rows) == [
        "all-seeds: AMD EPYC (native bf16), seed 0; Another CPU, seed 1",
        "all, resnet18: Another CPU, two (seed 2), all-seeds (seed 1); AMD EPYC (native bf16), all-seeds (seed 0)",
    ]


def test_a_sweep_of_other_settings_is_read_at_the_values_picked_with_where(tmp_path, capsys):
    """The size sweep's 224-px point is of seed 0 (its RUN.json's, the seed not swept) and pools
    with a seed sweep at 224 px; without --where, or at a value it never ran, the tool stops."""
    import seed_checks

    sizes = ROOT / "figures" / "size-birds"
    found = seed_checks.points(sizes, {"image_size": 224})
    assert found == [(0, sizes / "image_size-224")]
    assert json.loads((sizes / "image_size-224" / "RUN.json").read_text())["parameters"]["seed"] == 0
    # a seed sweep whose other setting takes one value is read as it is, with or without --where
    again = tmp_path / "size-birds-seeds"
    again.mkdir()
    stamp = (sizes / "points.csv").read_text().partition("\n")[0]
    table = pd.read_csv(sizes / "points.csv", skiprows=1, dtype=str, keep_default_na=False)
    table = table[table["point"] == "image_size-224"].assign(params='{"image_size": 224, "seed": 0}')
    (again / "points.csv").write_text(stamp + "\n" + table.to_csv(index=False))
    shutil.copytree(sizes / "image_size-224", again / "image_size-224")
    only = [(0, again / "image_size-224")]
    assert seed_checks.points(again) == seed_checks.points(again, {"image_size": 224}) == only
    rows = seed_checks.seed_rows(sizes, found) | seed_checks.seed_rows(again, seed_checks.points(again))
    pooled = seed_checks.pooled(rows)
    one = pooled[("size-birds", "resnet18", "top 50%")]
    both = pooled[("all", "resnet18", "top 50%")]
    assert (one["seeds"], both["seeds"]) == (1, 2)
    for label in seed_checks.VERDICTS.values():  # the same point twice: every count doubled
        assert both[label] == " / ".join(str(2 * int(n)) for n in one[label].split(" / ")), label
    seed_checks.main("--where", "image_size=224", str(sizes))
    assert "| all " in capsys.readouterr().out
    with pytest.raises(SystemExit, match="seed 0 of resnet18 is in two sweeps with the same settings"):
        seed_checks.main("--where", "image_size=224", str(sizes), str(again))  # refused: it would count twice
    assert capsys.readouterr().out == ""
    # refusals, each in one line with nothing printed
    with pytest.raises(SystemExit, match="sweeps image_size, not the seed alone.*--where image_size=VALUE"):
        seed_checks.main(str(sizes))
    with pytest.raises(SystemExit, match="has no point of image_size=96: give values it swept"):
        seed_checks.main("--where=image_size=96", str(sizes))
    with pytest.raises(SystemExit, match="--where 'image_size' is not NAME=VALUE"):
        seed_checks.main("--where", "image_size", str(sizes))
    with pytest.raises(SystemExit, match=r"does not sweep occlusion_fill \(it sweeps image_size\): drop that --where"):
        seed_checks.main("--where", "occlusion_fill=zero", str(sizes))
    assert capsys.readouterr().out == ""
    with pytest.raises(SystemExit):  # not read as a sweep folder named --were
        seed_checks.main("--were", "image_size=224", str(sizes))
    assert "unrecognized arguments: --were" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        seed_checks.main("--help")
    assert "--where NAME=VALUE" in capsys.readouterr().out
