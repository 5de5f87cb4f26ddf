"""Sweeps on Dask: the grid, shared stages between points, restart, and failed points."""

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from gadlib import GADInputError
from gadlib import record as gad_record
from gadlib.sweep import group_of, parse_grid, point_name, points_of, read_points, run_folder_whole, run_sweep


def test_grid_from_the_command_line_and_yaml(tmp_path):
    (tmp_path / "grid.yaml").write_text("alphas: [[2, 4], [2, 4, 6, 8]]\nconsensus_q: 0.5\n")
    # a setting that is itself a list (alphas, hull_rules) takes a list of lists
    grid = parse_grid(["consensus_q=[0.3, 0.7]", "hull_rules=[['top_q']]"], str(tmp_path / "grid.yaml"))
    assert grid == {"alphas": [[2, 4], [2, 4, 6, 8]], "consensus_q": [0.3, 0.7], "hull_rules": [["top_q"]]}
    points = points_of(grid)
    assert len(points) == 4 and points[1] == {"alphas": [2, 4], "consensus_q": 0.7, "hull_rules": ["top_q"]}
    assert point_name(points[0]) == "alphas-2-4__consensus_q-0.3__hull_rules-top_q"
    assert len({point_name(p) for p in points}) == 4
    # consensus_q comes after support training: the two points of one alphas share a group
    assert group_of(points[0]) == group_of(points[1]) != group_of(points[2])


def test_settings_whose_readable_names_agree_get_distinct_folders():
    # the committed alphas-q points keep their plain names; a value the plain form would confuse
    # (a sign, a nested list, a string of digits or spaces) carries a hash of itself
    assert point_name({"alphas": [2, 4, 6, 8], "consensus_q": 0.3}) == "alphas-2-4-6-8__consensus_q-0.3"
    for a, b in [(1, -1), ([2, 4], [-2, 4]), ([2, 4], [[2, 4]]), (2, "2"), ("a-b", "a b"), (0.5, -0.5)]:
        assert point_name({"seed": a}) != point_name({"seed": b}), (a, b)
    assert point_name({"seed": -1}) == "seed-1~7984b0"  # a fixed name, the same in every process


@pytest.mark.parametrize(
    "items, message",
    [
        (["consensus_q"], r"write NAME=\[VALUES\]"),
        (["colour=[1, 2]"], "unknown sweep setting 'colour'"),
        (["ig_step=[50]"], r"unknown sweep setting 'ig_step' \(did you mean ig_steps\?\)"),
        (["run_name=['a']"], "cannot be swept"),
        (["arch=[resnet18, vgg16]"], "'arch' is not swept: every point runs each architecture of --archs"),
        (["consensus_q=[]"], "has no values"),
        # a list setting's sweep values are lists: [2, 4] would be two points of alphas 2 and 4
        (["alphas=[2, 4]"], r"alphas takes a list, so each of its sweep values is one: -p alphas='\[\[2, 4\]\]'"),
        (["methods=[saliency]"], "methods takes a list"),
        (["consensus_q=[0.3, 0.5"], r"is not a list of values \(expected ',' or '\]'.* at line 1, column 10\)"),
        ([], "the grid is empty"),
    ],
)
def test_a_bad_grid_is_a_one_line_error(items, message):
    with pytest.raises(GADInputError, match=message) as err:
        parse_grid(items)
    assert "\n" not in str(err.value)


def test_a_point_out_of_range_stops_the_command_before_any_cluster_starts(tmp_path, capsys):
    """The settings of every point are checked first: one line, exit 2, nothing written (run_sweep
    itself still records a point that fails in its own preflight, as the stand-in tests show)."""
    from gadlib.sweep import main

    dirs = ["--runs-dir", str(tmp_path / "runs"), "--figures-dir", str(tmp_path / "figures")]
    assert main(["bad", "-p", "consensus_q=[0.5, 1.5]", "--profile", "smoke", *dirs]) == 2
    err = capsys.readouterr().err
    assert err == "error: point consensus_q-1.5: consensus_q must be in (0, 1], got 1.5\n"
    assert not (tmp_path / "runs").exists() and not (tmp_path / "figures").exists()
    # a setting every point shares is named as such, not as the first point's
    assert main(["bad", "-p", "consensus_q=[0.5]", "--dataset", "folder", *dirs]) == 2
    assert capsys.readouterr().err.startswith("error: dataset 'folder' needs data_dir")


def test_a_grid_file_that_is_not_yaml_is_a_one_line_error_naming_it(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("consensus_q: [0.3, 0.5\nalphas: [[2, 4]]\n")
    with pytest.raises(GADInputError, match=rf"grid file {path} is not valid YAML \(.* at line 2, column 7\)") as err:
        parse_grid([], str(path))
    assert "\n" not in str(err.value)


CALLS = []  # (point, the run folder it started from), as the stand-in below saw them
LISTED = {}  # point: its row of points.csv while it ran, what a sweep stopped then leaves


def fake_point(spec, leader=None):
    """A stand-in for sweep.run_point: no notebooks; consensus_q 1.5 fails."""
    CALLS.append((spec["point"], leader and leader["run_dir"]))
    index = read_points(Path(spec["figures_dir"]) / spec["sweep"] / "points.csv").set_index("point")
    LISTED[spec["point"]] = index.loc[spec["point"], ["status", "key"]].tolist()
    bad = spec["params"]["consensus_q"] == 1.5
    if not bad:  # what a finished chain leaves: its run folder with every architecture's rows, and its RUN.json
        for arch in spec["archs"]:
            rows = Path(spec["runs_dir"]) / spec["sweep"] / spec["point"] / arch
            rows.mkdir(parents=True, exist_ok=True)
            for name in ("rc.csv", "rs.csv"):
                (rows / name).write_text("image\n")
        record = Path(spec["figures_dir"]) / spec["sweep"] / spec["point"] / "RUN.json"
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"definitions": gad_record.definitions()}))  # as record.run_record
    return {
        "point": spec["point"],
        "run_dir": str(Path(spec["runs_dir"]) / spec["sweep"] / spec["point"]),
        "status": "failed" if bad else "done",
        "key": f"k-{spec['point']}",
        "seconds": 0.0,
        "error": "consensus_q must be in (0, 1]" if bad else "",
    }


@pytest.fixture
def stand_in_sweep(monkeypatch):
    """The sweep with `fake_point` for the notebook chain, on an in-process two-worker cluster."""
    from distributed import LocalCluster

    from gadlib import sweep

    CALLS.clear()
    monkeypatch.setattr(sweep, "run_point", fake_point)
    monkeypatch.setattr(sweep, "local_cluster", lambda workers: (LocalCluster(n_workers=2, processes=False), 0, 1))


def test_a_failed_first_point_hands_its_group_to_the_next(tmp_path, stand_in_sweep):
    """The scheduling alone, with a stand-in for the notebook chain on an in-process cluster:
    when a group's first point fails, the next point of the group runs first in its place, and
    no point ever starts from a failed point's folder."""
    grid = {"alphas": [[2], [4]], "consensus_q": [1.5, 0.3, 0.5]}
    table = run_sweep("fake", grid, {"dataset": "synthetic"}, ["resnet18"], runs_dir=tmp_path, figures_dir=tmp_path)
    assert table["status"].tolist() == ["failed", "done", "done"] * 2
    started_from = dict(CALLS)
    for a in ("2", "4"):
        assert started_from[f"alphas-{a}__consensus_q-1.5"] is None
        assert started_from[f"alphas-{a}__consensus_q-0.3"] is None  # runs first in the failed one's place
        assert started_from[f"alphas-{a}__consensus_q-0.5"].endswith(f"alphas-{a}__consensus_q-0.3")


def test_a_restart_runs_the_stopped_new_and_failing_points_only(tmp_path, stand_in_sweep):
    """A sweep run again (stand-in chain, in-process cluster) skips its finished points, runs
    again the one that was running when the sweep stopped (its row not done, its RUN.json not
    written), starts new points from a finished point of their group, and records a failing one."""
    dirs = {"runs_dir": str(tmp_path / "runs"), "figures_dir": str(tmp_path / "figures")}
    base, archs = {"dataset": "synthetic"}, ["resnet18"]
    run_sweep("r", {"alphas": [[2], [2, 4]], "consensus_q": [0.3, 0.5]}, base, archs, **dirs)
    stopped = "alphas-2__consensus_q-0.5"
    path = tmp_path / "figures" / "r" / "points.csv"
    lines = [
        line.replace(",done,", ",running,") if line.startswith(stopped + ",") else line
        for line in path.read_text().splitlines()
    ]
    path.write_text("\n".join(lines) + "\n")
    (tmp_path / "figures" / "r" / stopped / "RUN.json").unlink()

    CALLS.clear()
    again = run_sweep("r", {"alphas": [[2]], "consensus_q": [0.3, 0.5, 0.7, 1.5]}, base, archs, **dirs)
    assert dict(zip(again["point"], again["status"])) == {
        "alphas-2__consensus_q-0.3": "done",
        "alphas-2__consensus_q-0.5": "done",
        "alphas-2__consensus_q-0.7": "done",
        "alphas-2__consensus_q-1.5": "failed",
    }
    error = again.set_index("point").loc["alphas-2__consensus_q-1.5", "error"]
    assert "consensus_q" in error and "\n" not in error
    started_from = dict(CALLS)
    assert set(started_from) == {stopped, "alphas-2__consensus_q-0.7", "alphas-2__consensus_q-1.5"}
    finished_mate = str(tmp_path / "runs" / "r" / "alphas-2__consensus_q-0.3")
    assert started_from[stopped] == started_from["alphas-2__consensus_q-0.7"] == finished_mate
    assert len(read_points(path)) == 6  # the index keeps every point of both grids

    # other shared settings: nothing earlier counts as finished
    CALLS.clear()
    run_sweep("r", {"alphas": [[2]], "consensus_q": [0.3]}, {"dataset": "synthetic", "n_eval": 4}, archs, **dirs)
    assert [p for p, _ in CALLS] == ["alphas-2__consensus_q-0.3"]


def test_rerun_runs_the_finished_points_again(tmp_path, stand_in_sweep):
    """After a code change that alters a stage (stand-in chain, in-process cluster): --rerun runs
    every point again, each in its own run folder (the chain's cache keys reuse what did not
    change); without it nothing runs."""
    dirs = {"runs_dir": str(tmp_path / "runs"), "figures_dir": str(tmp_path / "figures")}
    base, archs, grid = {"dataset": "synthetic"}, ["resnet18"], {"alphas": [[2]], "consensus_q": [0.3, 0.5]}
    run_sweep("again", grid, base, archs, **dirs)
    CALLS.clear()
    run_sweep("again", grid, base, archs, **dirs)
    assert CALLS == []
    again = run_sweep("again", grid, base, archs, rerun=True, **dirs)
    assert sorted(p for p, _ in CALLS) == ["alphas-2__consensus_q-0.3", "alphas-2__consensus_q-0.5"]
    assert set(again["status"]) == {"done"}


def test_a_finished_point_running_again_stays_listed_until_its_new_result_lands(tmp_path, stand_in_sweep):
    """A finished point that runs again (--rerun, or its run folder lost with runs/) keeps its
    row, status and key, in points.csv while it runs: a sweep stopped then (Ctrl-C, a killed
    machine) has lost nothing of its index. A new point is listed as submitted. No point starts
    from a folder that runs again, since it is being rewritten."""
    dirs = {"runs_dir": str(tmp_path / "runs"), "figures_dir": str(tmp_path / "figures")}
    base, archs = {"dataset": "synthetic"}, ["resnet18"]
    run_sweep("k", {"consensus_q": [0.3, 0.5]}, base, archs, **dirs)
    shutil.rmtree(tmp_path / "runs" / "k" / "consensus_q-0.5")  # lost with its machine
    CALLS.clear(), LISTED.clear()
    again = run_sweep("k", {"consensus_q": [0.3, 0.5, 0.7]}, base, archs, rerun=True, **dirs)
    assert LISTED == {
        "consensus_q-0.3": ["done", "k-consensus_q-0.3"],
        "consensus_q-0.5": ["run folder not on this machine", "k-consensus_q-0.5"],
        "consensus_q-0.7": ["submitted", ""],
    }
    assert dict(CALLS)["consensus_q-0.3"] is None  # the group's first runs from nothing, not from itself
    assert all(leader in (None, str(tmp_path / "runs" / "k" / "consensus_q-0.3")) for leader in dict(CALLS).values())
    assert set(again["status"]) == {"done"}
    # without --rerun, the lost folder's point alone runs again, listed as it was meanwhile
    shutil.rmtree(tmp_path / "runs" / "k" / "consensus_q-0.7")
    CALLS.clear(), LISTED.clear()
    run_sweep("k", {"consensus_q": [0.3, 0.5, 0.7]}, base, archs, **dirs)
    assert LISTED == {"consensus_q-0.7": ["run folder not on this machine", "k-consensus_q-0.7"]}
    assert CALLS == [("consensus_q-0.7", str(tmp_path / "runs" / "k" / "consensus_q-0.3"))]


def test_a_point_killed_after_its_folder_was_linked_runs_again(tmp_path, stand_in_sweep):
    """A point starts from a hard-linked copy of its leader's folder, which holds the leader's
    rows: killed before its own chain took that folder, it must not read as finished (the
    copy carries a holder file until a chain has held and released it)."""
    from gadlib import sweep

    dirs = {"runs_dir": str(tmp_path / "runs"), "figures_dir": str(tmp_path / "figures")}
    base, archs, grid = {"dataset": "synthetic"}, ["resnet18"], {"consensus_q": [0.3, 0.5]}
    run_sweep("l", grid, base, archs, **dirs)
    lead, killed = (tmp_path / "runs" / "l" / f"consensus_q-{q}" for q in ("0.3", "0.5"))
    shutil.rmtree(killed)
    sweep._link_tree(lead, killed)  # what a point killed between the link and its chain leaves
    assert (killed / "resnet18" / "rc.csv").is_file() and not run_folder_whole(killed, archs)
    CALLS.clear()
    run_sweep("l", grid, base, archs, **dirs)
    assert [p for p, _ in CALLS] == ["consensus_q-0.5"]


def test_a_point_without_its_run_folder_or_with_other_settings_runs_again(tmp_path, stand_in_sweep):
    """A fresh clone has the committed points.csv and RUN.json but no runs/: nothing there is
    finished, and no point starts from a folder that is not here. Two settings whose readable
    names agree (seed -1 and 1) are two points in two folders."""
    import shutil

    dirs = {"runs_dir": str(tmp_path / "runs"), "figures_dir": str(tmp_path / "figures")}
    base, archs, grid = {"dataset": "synthetic"}, ["resnet18"], {"seed": [1], "consensus_q": [0.3, 0.5]}
    run_sweep("c", grid, base, archs, **dirs)
    shutil.rmtree(tmp_path / "runs")
    CALLS.clear()
    again = run_sweep("c", grid, base, archs, **dirs)
    assert set(again["status"]) == {"done"}
    started_from = dict(CALLS)
    assert started_from["seed-1__consensus_q-0.3"] is None  # the group's first runs first, from nothing
    assert started_from["seed-1__consensus_q-0.5"] == str(tmp_path / "runs" / "c" / "seed-1__consensus_q-0.3")
    # a smaller grid on a clone without runs/: the other done point is not there to read
    shutil.rmtree(tmp_path / "runs" / "c" / "seed-1__consensus_q-0.5")
    run_sweep("c", {"seed": [1], "consensus_q": [0.3]}, base, archs, **dirs)
    rows = read_points(tmp_path / "figures" / "c" / "points.csv").set_index("point")
    # still the key of the figures it left, which tools/seed_checks.py reads (notebook 08 refuses it)
    assert rows.loc["seed-1__consensus_q-0.5", ["status", "key"]].tolist() == [
        "run folder not on this machine",
        "k-seed-1__consensus_q-0.5",
    ]
    # two values that read alike (train_lr 1e+20 reads 1e-20) get two folders: the second's name
    # carries a hash, and the first's point stays done
    run_sweep("e", {"train_lr": [1e-20], "consensus_q": [0.3]}, base, archs, **dirs)
    CALLS.clear()
    other = run_sweep("e", {"train_lr": [1e20], "consensus_q": [0.3]}, base, archs, **dirs)
    assert [p for p, _ in CALLS] == ["train_lr-1e-20~63df2b__consensus_q-0.3"]
    assert other["params"].tolist() == ['{"train_lr": 1e+20, "consensus_q": 0.3}']
    rows = read_points(tmp_path / "figures" / "e" / "points.csv").set_index("point")["status"]
    assert rows["train_lr-1e-20__consensus_q-0.3"] == "done"
    assert (tmp_path / "runs" / "e" / "train_lr-1e-20__consensus_q-0.3").is_dir()


def test_a_grid_of_new_points_on_a_clone_without_run_folders_skips_notebook_08_in_one_line(
    tmp_path, stand_in_sweep, monkeypatch, capsys
):
    """Adding a point to a sweep whose earlier run folders are not here (a fresh clone): the new
    point runs, the command succeeds, and notebook 08 is not run (it would pool the new point
    alone), with one line saying why and what would make it; the earlier effects, which leave the
    new point out, are removed. With the run folder back, the earlier point is done again."""
    import shutil

    from gadlib import sweep

    dirs = ["--runs-dir", str(tmp_path / "runs"), "--figures-dir", str(tmp_path / "figures")]
    summarised = []
    monkeypatch.setattr(sweep, "summarise", lambda *a: summarised.append(a))
    assert sweep.main(["n", "-p", "consensus_q=[0.3]", "--archs", "resnet18", *dirs]) == 0
    assert len(summarised) == 1  # every finished point here: notebook 08 runs
    effects = tmp_path / "figures" / "n" / "effects_top_q.csv"  # as notebook 08 left it, of point 0.3 alone
    effects.write_text("parameter,value\n")
    shutil.move(tmp_path / "runs", tmp_path / "elsewhere")
    capsys.readouterr()
    assert sweep.main(["n", "-p", "consensus_q=[0.5]", "--archs", "resnet18", *dirs]) == 0
    out = capsys.readouterr().out
    assert len(summarised) == 1 and "notebook 08 not run: the run folders of the earlier points consensus_q-0.3 " in out
    assert "removed: effects_top_q.csv" in out and not effects.exists()  # it no longer pooled every point
    index = tmp_path / "figures" / "n" / "points.csv"
    assert read_points(index).set_index("point")["status"].to_dict() == {
        "consensus_q-0.3": "run folder not on this machine",
        "consensus_q-0.5": "done",
    }
    # its run folder back on this machine: the point is finished again, in a grid (it does not run)
    # or outside it (done, and notebook 08 pools it)
    shutil.copytree(tmp_path / "elsewhere" / "n" / "consensus_q-0.3", tmp_path / "runs" / "n" / "consensus_q-0.3")
    CALLS.clear()
    assert sweep.main(["n", "-p", "consensus_q=[0.3]", "--archs", "resnet18", *dirs]) == 0
    assert CALLS == [] and len(summarised) == 2 and set(read_points(index)["status"]) == {"done"}


def test_ctrl_c_stops_a_sweep_in_one_line_naming_its_index(tmp_path, monkeypatch, capsys):
    from gadlib import sweep

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "run_sweep", interrupted)
    assert sweep.main(["c", "-p", "consensus_q=[0.3]", "--figures-dir", str(tmp_path)]) == 130
    index = tmp_path / "c" / "points.csv"
    assert capsys.readouterr().err == (
        f"stopped (Ctrl-C): {index} lists the points that finished; the same command runs the rest\n"
    )


def test_a_run_folder_a_stopped_run_left_or_without_an_architectures_rows_is_not_finished(tmp_path, stand_in_sweep):
    """A point whose row says done but whose run folder is not whole (the holder file a stopped
    run leaves, or an architecture's rc.csv missing) runs again in the grid, and outside it is not
    on this machine: notebook 08 would otherwise pool it as it is, its rows missing."""
    from gadlib.runfolder import holder_path

    dirs = {"runs_dir": str(tmp_path / "runs"), "figures_dir": str(tmp_path / "figures")}
    base, archs, grid = {"dataset": "synthetic"}, ["resnet18"], {"consensus_q": [0.3, 0.5]}
    run_sweep("w", grid, base, archs, **dirs)
    stopped, partial = (tmp_path / "runs" / "w" / f"consensus_q-{q}" for q in ("0.3", "0.5"))
    holder_path(stopped).write_text("pid 1\n")
    (partial / "resnet18" / "rc.csv").unlink()
    CALLS.clear()
    run_sweep("w", {"consensus_q": [0.3]}, base, archs, **dirs)
    assert [p for p, _ in CALLS] == ["consensus_q-0.3"]
    rows = read_points(tmp_path / "figures" / "w" / "points.csv").set_index("point")["status"]
    assert rows.to_dict() == {"consensus_q-0.3": "done", "consensus_q-0.5": "run folder not on this machine"}


def test_every_sweep_command_of_the_readme_parses():
    """Each `python -m gadlib.sweep` line of the README and docs/ is a command the sweep accepts,
    with a grid it can read (nothing runs)."""
    import shlex

    from gadlib.sweep import parser

    from conftest import ROOT

    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    text = "\n".join(doc.read_text() for doc in documents).replace("\\\n", " ")
    commands = [
        line[line.index("gadlib.sweep") + len("gadlib.sweep") :]
        for line in text.splitlines()
        if "-m gadlib.sweep " in line
    ]
    assert commands
    for command in commands:
        args = parser().parse_args(shlex.split(command.split("#")[0].strip().rstrip("`")))
        grid = parse_grid(args.param, str(ROOT / args.grid) if args.grid else None)
        assert points_of(grid), command


def _inode(path):
    return os.stat(path).st_ino


@pytest.mark.slow
def test_a_sweep_shares_the_stages_of_a_group(tmp_path, monkeypatch):
    """A smoke sweep of notebook chains on a two-worker LocalCluster: two points that differ only
    in consensus_q train their supports and compute their attributions once. One group, so its
    points run one after the other: groups side by side, restarts and failures are the stand-in
    tests' above; two real chains side by side in two workers, the heavy test's below (a second
    group here cost 70 s of make test)."""
    monkeypatch.setenv("GAD_PROFILE", "smoke")
    # under make test the sweep stays in build/ for notebook 08 to read (GAD_SWEEP=test-sweep)
    root_runs = Path(os.environ.get("GAD_RUNS_DIR") or tmp_path / "runs").resolve()
    root_figures = Path(os.environ.get("GAD_FIGURES_DIR") or tmp_path / "figures").resolve()
    for root in (root_runs, root_figures):
        shutil.rmtree(root / "test-sweep", ignore_errors=True)
    dirs = {"runs_dir": str(root_runs), "figures_dir": str(root_figures)}
    # fp32: with precision auto the probe depends on consensus_q too (the README's limit)
    base, archs = {"dataset": "synthetic", "precision": "fp32"}, ["resnet18"]
    grid = {"alphas": [[2]], "consensus_q": [0.3, 0.5]}
    table = run_sweep("test-sweep", grid, base, archs, workers=2, **dirs)
    assert (table["status"] == "done").all(), table["error"].tolist()
    index = read_points(root_figures / "test-sweep" / "points.csv")
    assert index["status"].tolist() == ["done"] * 2 and index["key"].str.len().min() == 16
    runs = root_runs / "test-sweep"
    a, b = (runs / f"alphas-2__consensus_q-{q}" / "resnet18" for q in ("0.3", "0.5"))
    # the shared stages ran once: the second point's files are the first's, not rewritten
    for shared in ("models/original.pt", "models/support_2_2.pt", "attributions/saliency.pt"):
        assert _inode(a / shared) == _inode(b / shared), shared
    assert not (a / "rc.csv").samefile(b / "rc.csv")  # what consensus_q changes is its own
    assert run_folder_whole(a.parent, archs) and run_folder_whole(b.parent, archs)  # as a later sweep reads them
    computed = ["computed" in (p.parent / "executed" / "03_attributions_resnet18.ipynb").read_text() for p in (a, b)]
    assert computed == [True, False]
    records = [json.loads((root_figures / "test-sweep" / p / "RUN.json").read_text()) for p in index["point"]]
    assert all(r["tables_key"] for r in records)
    # the second point's record says what it took from the first, which made everything itself
    assert records[0]["read_back"] == []
    shared = ["resnet18/models/original.pt", "resnet18/models/support_2_2.pt", "resnet18/attributions/saliency.pt"]
    assert set(shared) <= set(records[1]["read_back"]) and "resnet18/rc.csv" not in records[1]["read_back"]


def _worker_processes():
    """The Dask worker processes this test's LocalCluster started (children of this process)."""
    import psutil

    found = []
    for p in psutil.Process().children(recursive=True):
        line = " ".join(p.cmdline())
        if "spawn_main" in line and "resource_tracker" not in line:
            found.append(p)
    return found


@pytest.mark.heavy
def test_killing_a_worker_mid_sweep_still_finishes_every_point(tmp_path, monkeypatch):
    """SIGKILL one of two workers while both run a point: Dask runs that point again on the
    restarted worker, the point resumes from its run folder, and every file is whole."""
    import signal
    import threading
    import time

    import torch

    monkeypatch.setenv("GAD_PROFILE", "smoke")
    dirs = {"runs_dir": str(tmp_path / "runs"), "figures_dir": str(tmp_path / "figures")}
    result = {}
    sweep = threading.Thread(
        target=lambda: result.update(
            table=run_sweep("kill", {"alphas": [[2], [4]]}, {"dataset": "synthetic"}, ["resnet18"], workers=2, **dirs)
        )
    )
    sweep.start()
    started = list((tmp_path / "runs" / "kill").glob("*/executed/02_support_training_resnet18.ipynb"))
    deadline = time.time() + 300
    while len(started) < 2 and time.time() < deadline:  # both points past notebook 01: each has files to resume from
        time.sleep(0.5)
        started = list((tmp_path / "runs" / "kill").glob("*/executed/02_support_training_resnet18.ipynb"))
    assert len(started) == 2, "the points did not both reach support training"
    workers = _worker_processes()
    assert len(workers) == 2
    workers[0].send_signal(signal.SIGKILL)
    sweep.join(timeout=600)
    table = result["table"]
    assert (table["status"] == "done").all(), table["error"].tolist()
    for path in (tmp_path / "runs" / "kill").rglob("*.pt"):
        if not path.name.startswith("."):
            torch.load(path, map_location="cpu", weights_only=False)  # whole, or this raises
    for path in (tmp_path / "figures" / "kill").rglob("*.json"):
        json.loads(path.read_text())
    records = [json.loads(p.read_text()) for p in (tmp_path / "figures" / "kill").glob("*/RUN.json")]
    assert len(records) == 2 and any(r["read_back"] for r in records)  # the killed point resumed, not restarted
    for path in [*(tmp_path / "runs" / "kill").rglob("*.csv"), *(tmp_path / "figures" / "kill").rglob("*.csv")]:
        if not path.name.startswith("."):
            assert len(read_points(path) if path.name == "points.csv" else pd.read_csv(path, comment="#")), path


def test_effects_of_a_hull_rule_no_point_computed_is_a_one_line_error():
    import pandas as pd

    from gadlib import GADInputError, sweep_effects

    rc = pd.DataFrame({"hull_rule": ["frac_max"], "point": ["p"], "rc": [0.5]})
    with pytest.raises(GADInputError, match="no hulls by rule 'top_q': choose one of frac_max"):
        sweep_effects.effects(pd.DataFrame({"point": ["p"]}), rc, rc, "top_q")


def test_a_second_process_on_one_sweep_is_refused_in_one_line(tmp_path, stand_in_sweep):
    from filelock import FileLock

    from gadlib import GADInputError

    dirs = {"runs_dir": str(tmp_path / "runs"), "figures_dir": str(tmp_path / "figures")}
    (tmp_path / "figures" / "busy").mkdir(parents=True)
    with FileLock(tmp_path / "figures" / "busy" / ".lock"):  # as a sweep running in another process holds it
        with pytest.raises(GADInputError, match="sweep 'busy' is running in another process"):
            run_sweep("busy", {"consensus_q": [0.3]}, {"dataset": "synthetic"}, ["resnet18"], **dirs)
    assert CALLS == []


def test_make_sweep_without_a_grid_stops_in_one_line_before_anything_runs():
    """SWEEP=name looks for sweeps/<name>.yaml; without it (and without PARAMS) make says so,
    before it installs, syncs notebooks or starts a sweep."""
    import subprocess

    from conftest import ROOT

    done = subprocess.run(
        ["make", "--no-print-directory", "sweep", "SWEEP=no-such-grid"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 2 and done.stdout == ""
    error = done.stderr.splitlines()[0]
    assert error.startswith("error: make sweep SWEEP=no-such-grid has no grid: sweeps/no-such-grid.yaml")
    assert "GRID=" in error


def test_a_points_worker_records_the_thread_count_its_kernels_run_with(monkeypatch):
    """The kernels inherit the environment; the runner in the worker, which writes RUN.json, had
    read Dask's one thread at import and recorded 1 where its kernels ran on 2 (--workers 1)."""
    import torch

    from gadlib import sweep

    before = torch.get_num_threads()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(var, "1")  # as Dask's nanny leaves them
    try:
        torch.set_num_threads(1)
        sweep._bind_device({"threads": 2})
        assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "2"
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_points_made_under_other_definitions_run_again_without_rerun(tmp_path, stand_in_sweep, monkeypatch):
    """After a change of definition (a bumped version in `record.definitions`), the same sweep runs
    its finished points again by itself, and marks an earlier point outside the grid stale, so
    notebook 08 never pools rows of two definitions."""
    dirs = {"runs_dir": str(tmp_path / "runs"), "figures_dir": str(tmp_path / "figures")}
    base, archs = {"dataset": "synthetic"}, ["resnet18"]
    run_sweep("d", {"alphas": [[2]], "consensus_q": [0.3, 0.5]}, base, archs, **dirs)
    now = gad_record.definitions()
    monkeypatch.setattr(gad_record, "definitions", lambda: {**now, "regions": now["regions"] + 1})
    CALLS.clear()
    table = run_sweep("d", {"alphas": [[2]], "consensus_q": [0.3]}, base, archs, **dirs)
    assert [p for p, _ in CALLS] == ["alphas-2__consensus_q-0.3"]
    assert table["status"].tolist() == ["done"]
    status = read_points(tmp_path / "figures" / "d" / "points.csv").set_index("point")["status"]
    regions = f"regions {now['regions']}, now {now['regions'] + 1}"
    assert status["alphas-2__consensus_q-0.5"] == f"stale (other code: {regions})"
    CALLS.clear()  # the rerun point was recorded under the new definitions: finished now
    run_sweep("d", {"alphas": [[2]], "consensus_q": [0.3]}, base, archs, **dirs)
    assert CALLS == []
