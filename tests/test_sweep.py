"""Sweeps on Dask: the grid, shared stages between points, restart, and failed points."""

import json
import os

import pandas as pd
import pytest

from gadlib import GADInputError
from gadlib.sweep import group_of, parse_grid, point_name, points_of, run_sweep


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


@pytest.mark.parametrize(
    "items, message",
    [
        (["consensus_q"], r"write NAME=\[VALUES\]"),
        (["colour=[1, 2]"], "cannot be swept"),
        (["run_name=['a']"], "cannot be swept"),
        (["consensus_q=[]"], "has no values"),
        ([], "the grid is empty"),
    ],
)
def test_a_bad_grid_is_a_one_line_error(items, message):
    with pytest.raises(GADInputError, match=message) as err:
        parse_grid(items)
    assert "\n" not in str(err.value)


def _inode(path):
    return os.stat(path).st_ino


@pytest.mark.slow
def test_a_sweep_shares_stages_restarts_where_it_stopped_and_records_failed_points(tmp_path, monkeypatch):
    """A 2x2 smoke sweep on a two-worker LocalCluster: points that differ only in consensus_q
    train their supports and attributions once; then the sweep is run again with one finished
    point, one new point and one that fails: only the new and the failing points run."""
    monkeypatch.setenv("GAD_PROFILE", "smoke")
    dirs = {"runs_dir": str(tmp_path / "runs"), "figures_dir": str(tmp_path / "figures")}
    base, archs = {"dataset": "synthetic"}, ["resnet18"]
    grid = {"alphas": [[2], [2, 4]], "consensus_q": [0.3, 0.5]}
    table = run_sweep("s", grid, base, archs, workers=2, **dirs)
    assert (table["status"] == "done").all(), table["error"].tolist()
    index = pd.read_csv(tmp_path / "figures" / "s" / "points.csv")
    assert index["status"].tolist() == ["done"] * 4 and index["key"].str.len().min() == 16
    runs = tmp_path / "runs" / "s"
    for group in ("alphas-2", "alphas-2-4"):
        a, b = (runs / f"{group}__consensus_q-{q}" / "resnet18" for q in ("0.3", "0.5"))
        # the shared stages ran once: the second point's files are the first's, not rewritten
        for shared in ("models/support_2_2.pt", "attributions/saliency.pt"):
            assert _inode(a / shared) == _inode(b / shared), shared
        assert not (a / "rc.csv").samefile(b / "rc.csv")  # what consensus_q changes is its own
        computed = [
            "computed" in (p.parent / "executed" / "03_attributions_resnet18.ipynb").read_text() for p in (a, b)
        ]
        assert computed == [True, False]
    for point in index["point"]:
        assert json.loads((tmp_path / "figures" / "s" / point / "RUN.json").read_text())["tables_key"]
    finished = {p: (runs / p / "executed" / "06_figures.ipynb").stat().st_mtime for p in index["point"]}

    # run again: one finished point, one new point of the same group, one with a bad setting
    again = run_sweep("s", {"alphas": [[2]], "consensus_q": [0.3, 0.7, 1.5]}, base, archs, workers=2, **dirs)
    status = dict(zip(again["point"], again["status"]))
    assert status == {
        "alphas-2__consensus_q-0.3": "done",
        "alphas-2__consensus_q-0.7": "done",
        "alphas-2__consensus_q-1.5": "failed",
    }
    error = again.set_index("point").loc["alphas-2__consensus_q-1.5", "error"]
    assert "consensus_q" in error and "\n" not in error
    for point, mtime in finished.items():  # nothing finished earlier ran again
        assert (runs / point / "executed" / "06_figures.ipynb").stat().st_mtime == mtime
    new, old = (runs / f"alphas-2__consensus_q-{q}" / "resnet18" / "models" / "support_2_2.pt" for q in ("0.7", "0.3"))
    assert _inode(new) == _inode(old)  # the new point started from its finished group-mate
