"""What notebook 08 pools over a sweep's points (`sweep_effects.effects`), on rows built by hand."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_reviewer_checks import EXTRA, N, hand_rows

from gadlib import sweep_effects
from gadlib.runfiles import read_csv, strip_key
from gadlib.sweep import NOT_HERE, read_points


def two_points() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Two points of a sweep over consensus_q, each with the hand-built rows of one run."""
    rc, rs = hand_rows()
    points = pd.DataFrame(
        {"point": ["q3", "q5"], "key": ["k3", "k5"], "consensus_q": [json.dumps(0.3), json.dumps(0.5)]}
    )
    both = [(rc.assign(point=p), rs.assign(point=p)) for p in points["point"]]
    return points, pd.concat([r for r, _ in both]), pd.concat([s for _, s in both])


def test_the_logit_change_against_the_baseline_is_pooled_beside_rs():
    points, rc, rs = two_points()
    table = sweep_effects.effects(points, rc, rs, "top_q", resamples=500)
    assert set(table["measure"]) == set(sweep_effects.MEASURES)
    row = table.set_index(["value", "method", "measure"])
    for value in ("0.3", "0.5"):
        # per hull pixel the baseline's half-size hull wins; on the change itself GAD leads by EXTRA
        rs_gain, change = row.loc[(value, "S", "RS GAD - Base")], row.loc[(value, "S", "change GAD - Base")]
        assert rs_gain["high"] < 0
        assert change["mean"] == pytest.approx(EXTRA.mean()) and change["low"] > 0
        assert change["n"] == rs_gain["n"] == N  # pictures (both targets one cluster), one point per value


def test_each_point_pools_its_own_areas_with_its_own_rs():
    """At q5 GAD's hull is 300 pixels where it was 200 and the RS rows are unchanged: GAD's logit
    change there is 1.5 x (change_base + EXTRA) against the baseline's change_base. Pairing a
    point's RS with another point's areas would give q3's values at both."""
    points, rc, rs = two_points()
    wider = (rc["point"] == "q5") & (rc["area_gad"] == 200.0)
    rc = rc.assign(area_gad=rc["area_gad"].mask(wider, 300.0), rc=rc["rc"].mask(wider, 0.75))
    table = sweep_effects.effects(points, rc, rs, "top_q", resamples=10).set_index(["value", "method", "measure"])
    images = np.arange(N)
    change_base = 10.0 + images
    scale = np.where(images == 0, 1.0, 1.5)  # image 0's GAD hull is the original's at both points
    expected = {"0.3": EXTRA.mean(), "0.5": (scale * (change_base + EXTRA) - change_base).mean()}
    ratio = {"0.3": (0.25 + 15 * 0.5) / N, "0.5": (0.25 + 15 * 100 / 300) / N}  # the baseline's 100 pixels
    for value in ("0.3", "0.5"):
        assert table.loc[(value, "GB", "change GAD - Base"), "mean"] == pytest.approx(expected[value])
        assert table.loc[(value, "GB", "Base / GAD hull"), "mean"] == pytest.approx(ratio[value])
        assert table.loc[(value, "GB", "share Base hull smaller"), "mean"] == 1.0
        assert table.loc[(value, "GB", "share Base hull smaller"), "n"] == N


def test_rs_and_rc_rows_of_different_images_are_refused():
    points, rc, rs = two_points()
    for rc_rows, rs_rows in ((rc[rc["image"] > 0], rs), (rc, rs[rs["image"] > 0])):
        with pytest.raises(ValueError, match="RS and RC rows are of different images"):
            sweep_effects.effects(points, rc_rows, rs_rows, "top_q", resamples=10)


def test_points_of_different_images_pool_only_the_images_each_has():
    """A sweep over n_eval: the point with fewer images adds no empty rows for the others."""
    points, rc, rs = two_points()
    fewer = lambda rows: rows[(rows["point"] == "q5") | (rows["image"] < 8)]  # noqa: E731
    table = sweep_effects.effects(points, fewer(rc), fewer(rs), "top_q", resamples=10).set_index(
        ["value", "method", "measure"]
    )
    for measure in ("RS GAD - Base", "change GAD - Base"):
        assert table.loc[("0.3", "S", measure), "n"] == 8 and table.loc[("0.5", "S", measure), "n"] == N
    assert table.loc[("0.3", "S", "change GAD - Base"), "mean"] == pytest.approx(EXTRA[:8].mean())


def test_each_measure_counts_its_intervals_against_its_reference(tmp_path):
    points, rc, rs = two_points()
    table = sweep_effects.effects(points, rc, rs, "top_q", resamples=500)
    counts = sweep_effects.interval_counts(table)
    # 2 values x 5 methods: RC < 1 for 15 of 16 images (above half), GAD's RS far above the
    # supplementary region's and below the half-size baseline's, its logit change above
    assert counts.to_dict("index") == {
        "share RC<1": {"above": 10, "contains": 0, "below": 0},
        "RS GAD - Sup": {"above": 10, "contains": 0, "below": 0},
        "RS GAD - Base": {"above": 0, "contains": 0, "below": 10},
        "change GAD - Base": {"above": 10, "contains": 0, "below": 0},
        # equal hulls, GAD's larger change: ahead on both measures
        "RS GAD - Base(hull)": {"above": 10, "contains": 0, "below": 0},
        "change GAD - Base(hull)": {"above": 10, "contains": 0, "below": 0},
        # the baseline's hull a quarter or half of GAD's
        "share Base hull smaller": {"above": 10, "contains": 0, "below": 0},
        "Base / GAD hull": {"above": 0, "contains": 0, "below": 10},
        "Base(hull) / GAD hull": {"above": 0, "contains": 10, "below": 0},  # exactly GAD's
    }
    one = table.assign(low=table["low"].where(table["measure"] != "RS GAD - Sup"))  # no interval there
    assert sweep_effects.interval_counts(one).loc["RS GAD - Sup", "undefined"] == 10
    # a cell pooled from fewer pictures than a verdict needs is neither above nor below
    few = table.assign(n=table["n"].where(table["measure"] != "RS GAD - Sup", 5))
    assert sweep_effects.interval_counts(few).loc["RS GAD - Sup"].to_dict() == {
        "above": 0, "contains": 0, "below": 0, "too few": 10
    }  # fmt: skip
    assert sweep_effects.interval_counts(few.assign(n=6)).loc["RS GAD - Sup", "above"] == 10
    _, few_md = sweep_effects.write(few, points, "few", "top_q", figures_dir=tmp_path)
    header = re.split(r"\s*\|\s*", few_md.read_text().split("\n\n")[-2].splitlines()[0])[1:-1]
    assert header[1:] == ["above the reference", "contain it", "below it", "too few pictures"]
    csv, md = sweep_effects.write(table, points, "hand", "top_q", figures_dir=tmp_path)
    text = md.read_text()
    # stamped with what it pools (each point with its tables key) and what a cluster is
    written, st = read_csv(csv, dtype={"value": str})
    pd.testing.assert_frame_equal(written, table, check_dtype=False)
    assert st["points"] == {"q3": "k3", "q5": "k5"} and st["clusters"] == "pictures" and st["hull_rule"] == "top_q"
    assert text.endswith(f"<!-- gad key {st['key']} -->\n") and "resampling whole pictures" in text
    assert "| RS GAD - Base" in text.split("against its reference")[1]
    assert "(share RC<1 0.5, RS GAD - Sup 0, " in text and ", Base(hull) / GAD hull 1):" in text


def stored_data(run_dir: Path, seed: int, paths: list[str] | None) -> None:
    """The data.pt a run's stage 01 leaves: a test split of 12 images per class (files `paths`,
    or none as for synthetic data), of which n_eval = N images are evaluated."""
    import torch

    from gadlib import runfiles
    from gadlib.data import Dataset, Split

    labels = torch.tensor([0, 1] * 12)
    split = Split(torch.zeros(24, 3, 2, 2, dtype=torch.uint8), labels, paths=paths)
    settings = {"dataset": "folder", "seed": float(seed)}  # numbers as a run's stamp has them
    runfiles.save(run_dir / "data.pt", Dataset(split, split, ["a", "b"]), {"stage": "data", "settings": settings})


def finished_point(tmp_path, sweep: str, point: str, archs=("resnet18",), seed=0, paths=None, data_dir=None) -> dict:
    """A point as a finished chain leaves it: its stored data (`stored_data`), each architecture's
    hand-built rows stamped, and its RUN.json, of this code's definitions, recording their keys,
    its tables' key and its parameters."""
    from gadlib import runfiles
    from gadlib.record import definitions

    stored_data(tmp_path / "runs" / sweep / point, seed, paths)
    keys = {}
    for arch in archs:
        folder = tmp_path / "runs" / sweep / point / arch
        folder.mkdir(parents=True)
        for part, rows in zip(("rc", "rs"), hand_rows()):
            st = {"stage": part, "key": f"{part} of {point}, {arch}"}
            runfiles.write_csv(rows, folder / f"{part}.csv", st)
            keys.setdefault(arch, {})[part] = st["key"]
    record = {
        "definitions": definitions(),
        "archs": list(archs),
        "keys": keys,
        "tables_key": f"tables of {point}",
        "parameters": {"dataset": "folder", "n_eval": N, "seed": seed, **({"data_dir": data_dir} if data_dir else {})},
    }
    (tmp_path / "figures" / sweep / point).mkdir(parents=True, exist_ok=True)
    (tmp_path / "figures" / sweep / point / "RUN.json").write_text(json.dumps(record))
    return record


@pytest.mark.parametrize(
    "made, reason",
    [
        ({}, "made before runs recorded their definitions"),
        ({"regions": 2}, r"regions 2, now \d+"),
        (None, "RUN.json is missing or unreadable"),
    ],
)
def test_a_point_of_other_code_is_refused_in_one_line(tmp_path, made, reason):
    """A finished point whose RUN.json has other definitions than the code (or none, or no
    RUN.json) is not pooled: one line that names the point, what differs and what to run."""
    from gadlib.errors import GADInputError
    from gadlib.record import definitions

    point = "alphas-2__consensus_q-0.3"
    finished = finished_point(tmp_path, "old", point)
    folder = tmp_path / "figures" / "old"
    if made is None:
        (folder / point / "RUN.json").unlink()
    else:
        record = {} if made == {} else {**finished, "definitions": {**definitions(), **made}}
        (folder / point / "RUN.json").write_text(json.dumps(record))
    key = finished["tables_key"]
    row = {"point": point, "group": "g", "params": json.dumps({"consensus_q": 0.3}), "status": "done", "key": key}
    pd.DataFrame([{**row, "seconds": 1}]).to_csv(folder / "points.csv", index=False)
    with pytest.raises(
        GADInputError, match=f"point {point} is not of the current code \\(.*{reason}.*run the sweep again"
    ) as err:
        sweep_effects.read_sweep("old", tmp_path / "runs", tmp_path / "figures")
    assert "\n" not in str(err.value)
    (folder / point / "RUN.json").write_text(json.dumps(finished))
    points, rc_read, _ = sweep_effects.read_sweep("old", tmp_path / "runs", tmp_path / "figures")
    assert points["point"].tolist() == [point] and len(rc_read) == len(hand_rows()[0])


def test_a_point_whose_record_or_rows_another_run_rewrote_is_refused_in_one_line(tmp_path):
    """A run of the point's name with other settings, made since the sweep, rewrites its RUN.json
    or its per-image rows: pooled, those would count under the point's own swept values."""
    from gadlib import runfiles
    from gadlib.errors import GADInputError

    point = "consensus_q-0.3"
    finished = finished_point(tmp_path, "w", point)
    row = {"point": point, "group": "g", "params": json.dumps({"consensus_q": 0.3}), "status": "done"}
    index = tmp_path / "figures" / "w" / "points.csv"
    pd.DataFrame([{**row, "key": finished["tables_key"], "seconds": 1}]).to_csv(index, index=False)
    assert len(sweep_effects.read_sweep("w", tmp_path / "runs", tmp_path / "figures")[1]) == 2 * N * 5
    rs_csv = tmp_path / "runs" / "w" / point / "resnet18" / "rs.csv"
    runfiles.write_csv(hand_rows()[1], rs_csv, {"stage": "rs", "key": "a later run's"})
    with pytest.raises(
        GADInputError, match=f"the rows in .*resnet18 are not those the RUN.json of point {point}"
    ) as err:
        sweep_effects.read_sweep("w", tmp_path / "runs", tmp_path / "figures")
    assert "\n" not in str(err.value)
    record = tmp_path / "figures" / "w" / point / "RUN.json"
    record.write_text(json.dumps({**finished, "tables_key": "a later run's"}))
    with pytest.raises(GADInputError, match=f"RUN.json is not the run .*points.csv lists for point {point}") as err:
        sweep_effects.read_sweep("w", tmp_path / "runs", tmp_path / "figures")
    assert "\n" not in str(err.value)


def test_a_finished_point_whose_run_folder_is_not_here_is_not_left_out_unseen(tmp_path):
    """A sweep run with a smaller grid on a machine without the earlier run folders (a fresh
    clone) marks its earlier points so: notebook 08 would pool the other points only, and says
    so in one line instead, naming them."""
    import re

    from gadlib.errors import GADInputError, GADWarning
    from gadlib.record import definitions
    from gadlib.sweep import NOT_HERE

    rc, _ = hand_rows()
    folder = tmp_path / "figures" / "part"
    rows = []
    for q, status in ((0.3, "done"), (0.5, NOT_HERE), (0.7, "failed")):
        point = f"alphas-2__consensus_q-{q}"
        if status == "done":
            key = finished_point(tmp_path, "part", point)["tables_key"]
        else:
            (folder / point).mkdir(parents=True)
            (folder / point / "RUN.json").write_text(json.dumps({"definitions": definitions()}))
            key = "k"
        params = json.dumps({"consensus_q": q})
        rows.append({"point": point, "group": "g", "params": params, "status": status, "key": key, "seconds": 1})
    pd.DataFrame(rows).to_csv(folder / "points.csv", index=False)
    with pytest.raises(GADInputError, match="finished points alphas-2__consensus_q-0.5 are not on this machine") as err:
        sweep_effects.read_sweep("part", tmp_path / "runs", tmp_path / "figures")
    assert "\n" not in str(err.value)
    # a caller that reads its own grid's points (alpha selection) is not stopped by an earlier one
    points, _, _ = sweep_effects.read_sweep("part", tmp_path / "runs", tmp_path / "figures", only=[rows[0]["point"]])
    assert points["point"].tolist() == ["alphas-2__consensus_q-0.3"]
    rows[1]["status"] = "failed"  # a failed point is left out as its row says, and said to be
    pd.DataFrame(rows).to_csv(folder / "points.csv", index=False)
    left = "alphas-2__consensus_q-0.5 (failed), alphas-2__consensus_q-0.7 (failed)"
    with pytest.warns(GADWarning, match=f"points not finished, left out of the effects: {re.escape(left)} "):
        points, rc_read, rs_read = sweep_effects.read_sweep("part", tmp_path / "runs", tmp_path / "figures")
    assert points["point"].tolist() == ["alphas-2__consensus_q-0.3"]
    table = sweep_effects.effects(points, rc_read, rs_read, resamples=50)
    _, md = sweep_effects.write(table, points, "part", "top_q", tmp_path / "figures")
    assert strip_key(md.read_text()).endswith(f"Pooled over the finished points only; not finished, left out: {left}.")
    # an index that records the sweep's architectures: a done point without one's rows is refused
    context = '# sweep {"archs": ["resnet18", "vgg16"], "base": {}, "controls": false}\n'
    (folder / "points.csv").write_text(context + pd.DataFrame(rows).to_csv(index=False))
    with pytest.raises(GADInputError, match="point alphas-2__consensus_q-0.3 is not whole") as err:
        sweep_effects.read_sweep("part", tmp_path / "runs", tmp_path / "figures")
    assert "\n" not in str(err.value)
    # of the sweep's architecture alone: the rows of another, left by an earlier call, are not pooled
    context = context.replace('["resnet18", "vgg16"]', '["resnet18"]')
    (folder / "points.csv").write_text(context + pd.DataFrame(rows).to_csv(index=False))
    other = tmp_path / "runs" / "part" / rows[0]["point"] / "vgg16"
    shutil.copytree(other.with_name("resnet18"), other)
    _, rc_read, _ = sweep_effects.read_sweep("part", tmp_path / "runs", tmp_path / "figures")
    assert len(rc_read) == len(rc)
    (other.parent / "RUNNING").write_text("pid 1\n")  # as a killed run leaves its folder
    with pytest.raises(GADInputError, match="is not whole .*a running or killed run's"):
        sweep_effects.read_sweep("part", tmp_path / "runs", tmp_path / "figures")


def test_each_committed_sweeps_effects_are_of_every_point_it_finished():
    """Notebook 08 pools the points done when it runs: a table written before the last points
    finished, or by a run of part of the grid, would leave points out and still look whole (a
    point finished on another machine counts: the sweep removes the effects it would leave out). (A
    point left out of a grid over two parameters whose values other points still have goes
    unseen: the table pools each value over the other parameter's.)"""
    checked = 0
    for index in sorted((Path(__file__).resolve().parents[1] / "figures").glob("*/points.csv")):
        finished = read_points(index).query("status in ('done', 'run folder not on this machine')")
        params = [json.loads(p) for p in finished["params"]]
        for path in index.parent.glob("effects_*.csv"):
            table, _ = read_csv(path, dtype={"value": str}, keep_default_na=False)
            assert set(table["parameter"]) == {name for p in params for name in p}, path
            for name in set(table["parameter"]):
                values = set(table.loc[table["parameter"] == name, "value"])
                assert values == {json.dumps(p[name]) for p in params}, (path, name)
            checked += 1
    assert checked >= 8  # the committed seed and alpha sweeps


def test_points_of_a_grid_without_a_swept_parameter_take_their_records_value(tmp_path):
    """Points added to a sweep's index by a grid of other parameters have no value of its other
    grids' parameters: grouping by one would leave them out of its rows unseen, so each takes its
    RUN.json's value, labelled as the grids label an equal one."""
    folder = tmp_path / "figures" / "mixed"
    rows = []
    grids = (
        ("image_size-64", {"image_size": 64, "alphas": [2, 4]}, 0),
        ("seed-1", {"image_size": 224, "seed": 1}, 1),
        ("seed-0", {"image_size": 224, "seed": 0}, 0),
    )
    for point, params, seed in grids:  # each point's own 24 pictures
        paths = [f"/pack/{point}/{k}.jpg" for k in range(24)]
        key = finished_point(tmp_path, "mixed", point, seed=seed, paths=paths)["tables_key"]
        rows.append({"point": point, "group": point, "params": json.dumps(params), "status": "done", "key": key})
    record = json.loads((folder / "seed-1" / "RUN.json").read_text())
    record["parameters"]["alphas"] = [2.0, 4.0]  # as a RunConfig records it
    (folder / "seed-1" / "RUN.json").write_text(json.dumps(record))
    pd.DataFrame([{**r, "seconds": 1} for r in rows]).to_csv(folder / "points.csv", index=False)
    points, rc_read, rs_read = sweep_effects.read_sweep("mixed", tmp_path / "runs", tmp_path / "figures")
    assert points.set_index("point")["seed"].to_dict() == {"image_size-64": "0", "seed-1": "1", "seed-0": "0"}
    assert points.set_index("point").loc["seed-1", "alphas"] == "[2, 4]"  # the grid's label of an equal value
    table = sweep_effects.effects(points, rc_read, rs_read, resamples=10)
    n = table[(table["parameter"] == "seed") & (table["measure"] == "RS GAD - Base")].groupby("value")["n"].max()
    assert n.to_dict() == {"0": 2 * N, "1": N}  # seed 0's rows pool both of its points' pictures


# Committed sweeps whose effects were made before effects were stamped, with a cluster per image and
# target, and whose run folders are not on the machine that stamped the others (docs/sweeps.md).
UNSTAMPED = {
    *("fill", "fill-birds", "fill-catsdogs", "seeds-birds-vgg16"),
    *("size", "size-birds", "size-catsdogs"),
}


def test_each_committed_sweeps_effects_are_current_or_made_before_stamps():
    """Every committed effects table pools exactly the points its index lists as finished, with their
    keys, and resamples whole pictures (`effects_not_current`); the ones made before stamps are
    those named above, and no other table joins them."""
    unstamped = set()
    for index in sorted((Path(__file__).resolve().parents[1] / "figures").glob("*/points.csv")):
        for csv in index.parent.glob("effects_*.csv"):
            assert sweep_effects.effects_not_current(index.parent, csv.stem.removeprefix("effects_")) is None, csv
            if read_csv(csv)[1] is None:
                unstamped.add(index.parent.name)
    assert unstamped == UNSTAMPED


def test_a_picture_that_two_seeds_evaluate_at_other_positions_is_one_cluster(tmp_path, monkeypatch):
    """Two seeds draw other evaluation images from one test split: a file evaluated at position 3
    by one point and 11 by the other is one picture, so where a value pools both points its rows
    must be one bootstrap cluster per target (by position alone they were two, and the interval
    came out too narrow), and two pictures are never one. A point alone, or the same files at
    the same positions, keep the positions as the clusters' names, so those effects are as
    before."""
    from gadlib.data import eval_indices
    from gadlib.runfiles import load

    files = [f"/pack/{k}.jpg" for k in range(24)]
    context = '# sweep {"archs": ["resnet18"], "base": {}, "controls": false}\n'
    rows = []
    for seed in (0, 1):
        point = f"train_epochs-24__seed-{seed}"
        key = finished_point(tmp_path, "s", point, seed=seed, paths=files)["tables_key"]
        params = json.dumps({"train_epochs": 24, "seed": seed})
        rows.append({"point": point, "group": "g", "params": params, "status": "done", "key": key, "seconds": 1})
    (tmp_path / "figures" / "s" / "points.csv").write_text(context + pd.DataFrame(rows).to_csv(index=False))
    points, rc, rs = sweep_effects.read_sweep("s", tmp_path / "runs", tmp_path / "figures")
    drawn = {}
    for seed, point in enumerate(points["point"]):  # each row names the file its image is
        test = load(tmp_path / "runs" / "s" / point / "data.pt")[0].test
        drawn[point] = dict(enumerate(eval_indices(test, N, seed).tolist()))
        for read in (rc, rs):
            at = read[read["point"] == point]
            assert at["file"].tolist() == [files[drawn[point][i]] for i in at["image"]]
    shared = set(drawn[points["point"][0]].values()) & set(drawn[points["point"][1]].values())
    moved = {
        j
        for j in shared
        if [k for k, v in drawn[points["point"][0]].items() if v == j]
        != [k for k, v in drawn[points["point"][1]].items() if v == j]
    }
    assert moved  # files the two seeds evaluate at other positions
    # every bootstrap call of the effects, RC's rows and RS's (merged with RC's areas) alike
    calls = []
    real = sweep_effects.cluster_bootstrap
    monkeypatch.setattr(sweep_effects, "cluster_bootstrap", lambda v, c, *a: calls.append(c) or real(v, c, *a))
    table = sweep_effects.effects(points, rc, rs, "top_q", resamples=50)
    pooled = [c for c, parameter in zip(calls, table["parameter"]) if parameter == "train_epochs"]
    pictures = len(set(drawn[points["point"][0]].values()) | set(drawn[points["point"][1]].values()))
    assert len(pooled) == len(sweep_effects.MEASURES) * 5 and all(len(set(c)) == pictures for c in pooled)
    n = table[table["parameter"] == "train_epochs"].set_index(["method", "measure"])["n"]
    assert (n <= pictures).all() and (n.xs("RS GAD - Base", level="measure") == pictures).all()
    wanted = sweep_effects._pictures(rc[(rc["hull_rule"] == "top_q") & (rc["method"] == rc["method"].iloc[0])])
    assert sorted(pooled[list(sweep_effects.MEASURES).index("RS GAD - Base")]) == sorted(wanted)
    # a value of one point: the positions themselves, the effects those of rows without files
    apart = sweep_effects.effects(points, rc.drop(columns="file"), rs.drop(columns="file"), "top_q", resamples=50)
    alone = table[table["parameter"] == "seed"].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, apart[apart["parameter"] == "seed"].reset_index(drop=True))
    # the same files at the same positions (the second point made with the first one's seed), or no files
    record = tmp_path / "figures" / "s" / points["point"][1] / "RUN.json"
    params = {"dataset": "folder", "n_eval": N, "seed": 0}
    record.write_text(json.dumps({**json.loads(record.read_text()), "parameters": params}))
    for paths in (files, None):
        for point in points["point"]:
            stored_data(tmp_path / "runs" / "s" / point, 0, paths)
        _, rc, rs = sweep_effects.read_sweep("s", tmp_path / "runs", tmp_path / "figures")
        for read in (rc, rs):
            assert (sweep_effects._pictures(read) == read["image"].astype(str)).all()


def test_a_point_whose_stored_data_is_missing_or_of_other_settings_is_refused_in_one_line(tmp_path):
    from gadlib.errors import GADInputError

    point = "seed-1"
    key = finished_point(tmp_path, "d", point, seed=1)["tables_key"]
    row = {"point": point, "group": "g", "params": json.dumps({"seed": 1}), "status": "done", "key": key}
    pd.DataFrame([{**row, "seconds": 1}]).to_csv(tmp_path / "figures" / "d" / "points.csv", index=False)
    stored_data(tmp_path / "runs" / "d" / point, 2, None)
    with pytest.raises(GADInputError, match="point seed-1: its stored data is of seed 2, its RUN.json of 1: ") as err:
        sweep_effects.read_sweep("d", tmp_path / "runs", tmp_path / "figures")
    assert "\n" not in str(err.value)
    record = tmp_path / "figures" / "d" / point / "RUN.json"
    made = json.loads(record.read_text())
    record.write_text(json.dumps({**made, "parameters": {"dataset": "synthetic", "n_eval": N, "seed": 2}}))
    with pytest.raises(GADInputError, match="stored data is of dataset folder, its RUN.json of synthetic"):
        sweep_effects.read_sweep("d", tmp_path / "runs", tmp_path / "figures")
    record.write_text(json.dumps({**made, "parameters": {"dataset": "folder"}}))
    with pytest.raises(GADInputError, match="point seed-1: its RUN.json gives no n_eval or seed: run the sweep again"):
        sweep_effects.read_sweep("d", tmp_path / "runs", tmp_path / "figures")
    (tmp_path / "runs" / "d" / point / "data.pt").unlink()
    with pytest.raises(GADInputError, match="point seed-1: its stored data .* is missing or unreadable: run the sweep"):
        sweep_effects.read_sweep("d", tmp_path / "runs", tmp_path / "figures")


def test_a_pack_that_lay_elsewhere_for_one_point_names_its_pictures_as_the_others(tmp_path):
    """Points of one value made with the pack at two places (two machines, a sweep's workers)
    evaluate the same pictures: each row names its file by the pack's folder and its place in it,
    so the clusters are those of points made at one place, never one picture named twice."""
    context = '# sweep {"archs": ["resnet18"], "base": {}, "controls": false}\n'
    clusters = {}
    for places in (("/m1/pack", "/m1/pack"), ("/m1/pack", "/m2/elsewhere/pack")):
        rows = []
        for seed, root in enumerate(places):
            point = f"train_epochs-24__seed-{seed}"
            files = [f"{root}/{'ab'[k % 2]}/{k}.jpg" for k in range(24)]
            made = finished_point(tmp_path / root[1:3], "s", point, seed=seed, paths=files, data_dir=root)
            params = json.dumps({"train_epochs": 24, "seed": seed})
            rows.append({"point": point, "group": "g", "params": params, "status": "done", "key": made["tables_key"]})
        figures = tmp_path / places[0][1:3] / "figures" / "s"
        (figures / "points.csv").write_text(context + pd.DataFrame(rows).assign(seconds=1).to_csv(index=False))
        if places[1] != places[0]:  # the second point's folders beside the first's, as one sweep
            shutil.copytree(tmp_path / "m2" / "runs" / "s", tmp_path / "m1" / "runs" / "s", dirs_exist_ok=True)
            shutil.copytree(tmp_path / "m2" / "figures" / "s", figures, dirs_exist_ok=True)
        _, rc, _ = sweep_effects.read_sweep("s", tmp_path / "m1" / "runs", tmp_path / "m1" / "figures")
        assert rc["file"].str.match(r"pack/[ab]/\d+\.jpg$").all()
        one = rc[(rc["hull_rule"] == "top_q") & (rc["method"] == rc["method"].iloc[0])]
        clusters[places] = sorted(sweep_effects._pictures(one))
        shutil.rmtree(tmp_path / "m1")
    same, moved = clusters.values()
    assert same == moved and len(set(same)) < len(same)


def test_effects_of_other_points_than_those_done_are_found_and_removed(tmp_path):
    """Effects are stamped with the points they pool: once the index lists other points as done
    (a rerun point failed, a key changed) or the .md is not of the .csv, they are stale and a
    sweep call removes them with one line; effects made before stamps are left as they are."""
    points, rc, rs = two_points()
    table = sweep_effects.effects(points, rc, rs, "top_q", resamples=20)
    folder = tmp_path / "hand"
    folder.mkdir()
    index = folder / "points.csv"
    listed = points.assign(group="g", params="{}", status="done", seconds=1)[
        ["point", "group", "params", "status", "key"]
    ]
    listed.to_csv(index, index=False)
    csv, md = sweep_effects.write(table, points, "hand", "top_q", figures_dir=tmp_path)
    (folder / "sweep_effects_top_q.png").write_bytes(b"png")
    assert sweep_effects.effects_not_current(folder, "top_q") is None
    assert sweep_effects.remove_stale_effects(folder) == [] and csv.exists()
    for change, why in (
        (lambda: listed.assign(status=["done", "failed"]).to_csv(index, index=False), "pool other points"),
        (lambda: listed.assign(key=["k3", "k6"]).to_csv(index, index=False), "pool other points"),
        (lambda: md.write_text(md.read_text().replace("<!-- gad key ", "<!-- gad key 0")), "is not of the effects"),
    ):
        listed.to_csv(index, index=False)
        sweep_effects.write(table, points, "hand", "top_q", figures_dir=tmp_path)
        (folder / "sweep_effects_top_q.png").write_bytes(b"png")
        change()
        assert why in sweep_effects.effects_not_current(folder, "top_q")
        said = sweep_effects.remove_stale_effects(folder)
        assert said[0].startswith("removed effects_top_q.csv, effects_top_q.md, sweep_effects_top_q.png: ")
        assert len(said) == 1 and not any(folder.glob("*effects_*"))
    # finished on the machine that ran them (a fresh clone's index): the same points, kept
    listed.to_csv(index, index=False)
    sweep_effects.write(table, points, "hand", "top_q", figures_dir=tmp_path)
    listed.assign(status=NOT_HERE).to_csv(index, index=False)
    assert (
        sweep_effects.effects_not_current(folder, "top_q") is None and sweep_effects.remove_stale_effects(folder) == []
    )
    # made before effects were stamped: nothing to check them against, kept
    listed.assign(status=["done", "failed"]).to_csv(index, index=False)
    csv.write_text(table.to_csv(index=False))
    md.write_text("| a |\n")
    assert (
        sweep_effects.effects_not_current(folder, "top_q") is None and sweep_effects.remove_stale_effects(folder) == []
    )
