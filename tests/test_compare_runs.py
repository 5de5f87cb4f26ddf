"""tools/compare_runs.py: the direction verdicts of two runs, and which differences contradict."""

import json
import shutil
from pathlib import Path

import pytest
from compare_runs import _also_differ, compare, what_differs

from gadlib.tables import opposite_verdicts

from conftest import ROOT

UNDECIDED = "undecided (interval contains 0)"


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ("holds", "fails", True),
        ("holds", UNDECIDED, False),
        ("fails", "fails", False),
        ("class 1 holds, class 2 undecided", "fails", True),
        ("class 1 holds, class 2 fails", "class 1 holds, class 2 undecided", False),
        ("class 1 undecided, class 2 fails", "class 1 fails, class 2 holds", True),
        ("fails", "class 1 undecided, class 2 fails", False),
    ],
)
def test_opposite_verdicts_are_holds_against_fails_for_some_class(a, b, expected):
    assert opposite_verdicts(a, b) is expected and opposite_verdicts(b, a) is expected


def test_a_run_against_a_copy_with_one_verdict_turned_names_that_verdict(tmp_path):
    run = ROOT / "figures" / "synthetic-default"
    copy = tmp_path / "rerun"
    shutil.copytree(run, copy)
    with pytest.raises(SystemExit, match="differ in nothing"):
        what_differs(run, copy)
    record = json.loads((copy / "RUN.json").read_text())
    (copy / "RUN.json").write_text(json.dumps({**record, "device": "cpu: another machine"}))
    assert what_differs(run, copy)[2] == "device"  # no setting differs, the machine does
    # the report's header names how else the runs ran apart: here the code too
    (copy / "RUN.json").write_text(json.dumps({**record, "device": "cpu: another machine", "commit": "f" * 40}))
    pa, pb, field = what_differs(run, copy)
    assert _also_differ(pa, pb, field) == [f"commit {record['commit'][:7]} / fffffff"]
    same = compare(run, copy)
    assert (same["agree"] == same["verdicts"]).all() and (same["opposite"] == 0).all()

    path = copy / "direction_top_q.csv"
    lines = path.read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("synthetic,vgg16,S,"))
    assert lines[row].endswith(",holds,holds,fails")
    lines[row] = lines[row][: -len(",holds,fails")] + ",fails,fails"  # RS GAD vs Sup turned
    path.write_text("\n".join(lines) + "\n")
    turned = compare(run, copy)
    assert turned.loc[("top_q", "vgg16"), "differ"] == "S RS>Sup"
    assert turned.loc[("top_q", "vgg16"), "opposite"] == 1
    assert turned["opposite"].sum() == 1 and (turned["verdicts"] - turned["agree"]).sum() == 1


def test_runs_that_differ_in_a_setting_other_than_precision_are_refused(tmp_path):
    run = ROOT / "figures" / "synthetic-default"
    other = tmp_path / "other"
    shutil.copytree(run, other)
    record = json.loads((other / "RUN.json").read_text())
    record["parameters"]["consensus_q"] = 0.3
    (other / "RUN.json").write_text(json.dumps(record))
    with pytest.raises(SystemExit, match="must differ in precision or in train_precision alone"):
        what_differs(run, other)


def test_tables_with_verdicts_on_means_have_no_opposite_count():
    """synthetic-fp32 and -bf16 were made when verdicts were True/False on means: a flip there is
    not an interval that holds against one that fails, so "opposite" is not counted."""
    table = compare(ROOT / "figures" / "synthetic-fp32", ROOT / "figures" / "synthetic-bf16")
    assert (table["opposite"] == "n/a").all() and table["agree"].sum() == 58


def test_controls_summary_stops_with_one_line_naming_what_a_run_lacks_before_any_table(tmp_path, capsys, monkeypatch):
    from controls_summary import main

    monkeypatch.setenv("GAD_RUNS_DIR", str(tmp_path / "runs"))  # no run folders there
    figures = tmp_path / "figures" / "synthetic-default"
    shutil.copytree(ROOT / "figures" / "synthetic-default", figures)
    no_controls = tmp_path / "figures" / "no-controls"
    shutil.copytree(figures, no_controls)
    record = json.loads((no_controls / "RUN.json").read_text())
    (no_controls / "RUN.json").write_text(json.dumps({**record, "controls_keys": {}}))  # as --no-controls writes
    point = tmp_path / "figures" / "a-sweep" / "a-point"  # a sweep point's run folder is runs/<sweep>/<point>
    shutil.copytree(figures, point)
    (point / "RUN.json").write_text(json.dumps({**record, "run": "a-sweep/a-point"}))
    for folder, expected in (
        (figures, "runs/synthetic-default/resnet18/controls.csv is missing"),
        (no_controls, "has no controls"),
        (point, "runs/a-sweep/a-point/resnet18/controls.csv is missing"),
    ):
        with pytest.raises(SystemExit) as stop:
            main(str(folder))
        message = str(stop.value.code)
        assert "\n" not in message and expected in message
        assert capsys.readouterr().out == ""  # nothing half-printed into the file make writes


def test_controls_summary_refuses_a_run_folder_holding_another_run(tmp_path, monkeypatch):
    """A figures folder copied under another name (figures/cub-cpu-8f96e2d) keeps its run's name
    in RUN.json, so the run folder of that name may hold a later run's rows: the summary reads
    them only where their stamps are of that record's controls, and sanity.csv of the same models."""
    import pandas as pd
    from controls_summary import problem

    from gadlib import runfiles

    monkeypatch.setenv("GAD_RUNS_DIR", str(tmp_path / "runs"))
    figures = tmp_path / "figures" / "synthetic-default-old"
    shutil.copytree(ROOT / "figures" / "synthetic-default", figures)
    record = json.loads((figures / "RUN.json").read_text())
    arch, key = next(iter(record["controls_keys"].items()))
    run = tmp_path / "runs" / record["run"] / arch
    run.mkdir(parents=True)

    def write(name, key, models="m"):
        st = {"stage": name, "settings": {"seed": 0}, "inputs": {"models": models, "precision": "p"}, "key": key}
        runfiles.write_csv(pd.DataFrame({"value": [1.0]}), run / f"{name}.csv", st)

    write("controls", key)
    write("sanity", "its own key")
    assert problem(figures, arch) is None
    write("sanity", "its own key", models="other models")
    assert "sanity.csv is of other models than controls.csv beside it" in problem(figures, arch)
    write("controls", "a later run's key")
    assert f"controls.csv is not of the run in {figures / 'RUN.json'}" in problem(figures, arch)


def test_controls_summary_counts_undefined_verdicts_instead_of_dropping_them(tmp_path):
    from controls_summary import verdicts

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "RUN.json").write_text(json.dumps({"controls_keys": {"resnet18": "k"}}))
    (folder / "controls_verdicts_resnet18.csv").write_text(
        '# gad {"key": "k"}\n'  # the stamp of the run's controls
        "dataset,arch,metric,GAD vs,holds,fails,undecided (interval contains 0),no difference,undefined\n"
        "d,resnet18,rs,sup,1,2,3,0,4\n"
    )
    assert verdicts(folder, "resnet18", "run")[("rs", "sup")] == "1 / 2 / 3 (4 undefined)"


def test_a_sweep_point_of_one_architecture_compares_with_a_run_of_two(tmp_path, capsys):
    """The thread checks beside the sweeps: a point (ResNet18 alone, one thread) against the
    committed run of the same settings (both architectures, two threads)."""
    from compare_runs import main

    run, point = ROOT / "figures" / "cub-cpu", ROOT / "figures" / "alphas-q-birds" / "alphas-2-4-6-8__consensus_q-0.5"
    table = compare(run, point)
    assert list(table.index.get_level_values("arch").unique()) == ["resnet18"]
    assert table.attrs["only"] == {"cub-cpu": {"vgg16"}, point.name: set()}
    main(str(run), str(point))
    assert capsys.readouterr().out == (point.parent / "thread_check.md").read_text()
    other = tmp_path / "other"
    shutil.copytree(point, other)
    for table in other.glob("direction_*.csv"):
        table.write_text(table.read_text().replace("resnet18", "resnet99"))
    with pytest.raises(SystemExit, match="no architecture in common"):
        compare(run, other)


@pytest.mark.parametrize(
    "tool, args, message",
    [
        ("compare_with_paper.py", ["figures/cub-cpu", "cub"], "error: the paper has no dataset 'cub': choose birds"),
        ("compare_with_paper.py", ["figures/none", "birds"], "error: figures/none/table1_top_q.csv does not exist"),
        ("compare_runs.py", ["figures/none", "figures/cub-cpu"], "error: figures/none/RUN.json does not exist"),
        ("compare_runs.py", ["figures/cub-cpu"], "usage: python tools/compare_runs.py"),
    ],
)
def test_the_comparison_tools_refuse_bad_arguments_in_one_line(tool, args, message):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(ROOT / "tools" / tool), *args], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1


def test_two_runs_of_one_folder_name_keep_their_own_accuracies(tmp_path, capsys):
    """A sweep point against an older copy of itself (both `seed-0`): each run keeps its own
    column of test accuracies, not one column averaging the two."""
    from compare_runs import main
    from folder_names import labels

    old, new = tmp_path / "old" / "figures" / "cub-cpu", tmp_path / "figures" / "cub-cpu"
    shutil.copytree(ROOT / "figures" / "cub-cpu", old)
    shutil.copytree(ROOT / "figures" / "cub-cpu", new)
    record = json.loads((new / "RUN.json").read_text())
    (new / "RUN.json").write_text(json.dumps({**record, "device": "cpu: Another CPU"}))
    models = (new / "models.csv").read_text().splitlines()
    header, first = models[1], models[2].split(",")
    assert header.split(",")[4] == "accuracy"
    first[4] = "0.5"
    (new / "models.csv").write_text("\n".join([*models[:2], ",".join(first), *models[3:]]) + "\n")
    assert labels([old, new]) == ["old/figures/cub-cpu", f"{tmp_path.name}/figures/cub-cpu"]
    assert labels([tmp_path / "a" / "x", tmp_path / "b" / "x"]) == ["a/x", "b/x"]
    assert labels([Path("/x/seed-0"), Path("/y/x/seed-0")]) == ["/x/seed-0", "y/x/seed-0"]
    assert labels(["a/x/s", "b/x/s", "c/y/s"]) == ["a/x/s", "b/x/s", "y/s"]  # each as few parts as it takes
    assert labels(["seed-0", "seeds/seed-0", "figures/seeds/seed-0/"]) == [
        "seed-0",
        "seeds/seed-0",
        "figures/seeds/seed-0",
    ]
    main(str(old), str(new))
    out = capsys.readouterr().out
    assert f"of old/figures/cub-cpu (device {record['device']}) and {tmp_path.name}/figures/cub-cpu" in out
    original = next(line for line in out.splitlines() if line.startswith("| resnet18 | original"))
    assert [c.strip() for c in original.strip("|").split("|")][2:] == [f"{float(models[2].split(',')[4]):.3f}", "0.500"]


def test_what_changed_pairs_the_classifiers_by_architecture_and_names_rows_of_one_side(tmp_path, monkeypatch):
    """The earlier models.csv may list the architectures in another order, or other ones: each
    accuracy is compared with its own architecture's, and a direction row of one side only is
    named, not counted as "none flipped"."""
    import pandas as pd
    import what_changed

    from gadlib.runfiles import read_csv

    run = tmp_path / "synthetic-default"
    shutil.copytree(ROOT / "figures" / "synthetic-default", run)
    earlier = {}
    for path in run.glob("*.csv"):
        table, _ = read_csv(path)
        earlier[path.name] = table
    models = earlier["models.csv"]
    earlier["models.csv"] = pd.concat([models[models["arch"] == "vgg16"], models[models["arch"] == "resnet18"]])
    earlier["models.csv"].loc[earlier["models.csv"]["arch"] == "vgg16", "accuracy"] = 0.5
    direction = earlier["direction_top_q.csv"]
    earlier["direction_top_q.csv"] = direction[direction["method"] != "IG"]

    def old_csv(rev, path, index_col=None):  # as git would show the earlier files
        table = earlier[path.name]
        return table if index_col is None else table.set_index(list(table.columns[: len(index_col)]))

    monkeypatch.setattr(what_changed, "old_csv", old_csv)
    row = what_changed.summary("f40dc9b", run)
    now = read_csv(run / "models.csv")[0].groupby("arch")["accuracy"].first()
    assert row["original accuracy, before -> now"] == (
        f"vgg16 0.500 -> {now['vgg16']:.3f}, resnet18 {now['resnet18']:.3f} -> {now['resnet18']:.3f}"
    )
    assert "top_q resnet18 IG only now" in row["verdicts flipped"]
    assert "top_q vgg16 IG only now" in row["verdicts flipped"]
