"""The checks a reviewer asks of the direction tables (`tables.baseline_check`, notebook 06's
baseline_check_<rule> files; `sanity.verdicts`' interval, notebook 07) on rows built by hand, and
tools/reviewer_checks.py's summary of the committed runs."""

import re

import numpy as np
import pandas as pd
import pytest

from gadlib import sanity
from gadlib.config import METHODS
from gadlib.stats import FAILS, HOLDS, NO_DIFFERENCE, TOO_FEW, UNDECIDED, UNDEFINED, min_pairs
from gadlib.tables import baseline_check, both_measures, class_cells, direction_summary, sup_cells

from conftest import ROOT

N = 16  # images per class
# GAD's logit change minus the baseline's, per image: mean 0.62, standard deviation 1, so a 95%
# interval excludes 0 (1.96 x 0.25 < 0.62) and the family-wise one over 10 comparisons does not
# (2.81 x 0.25 > 0.62)
PATTERN = np.tile([1.0, -1.0], N // 2)
EXTRA = 0.62 + PATTERN


def hand_rows() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The baseline's hull half the size of GAD's (a quarter of the original's where GAD's is the
    original's, image 0), GAD's logit change a little larger than the baseline's; the hull-matched
    baseline's hull as large as GAD's, with the baseline's logit change."""
    rc_rows, rs_rows = [], []
    for method in METHODS:
        for target in (1, 2):
            for image in range(N):
                area_orig = 400.0
                area_gad = area_orig if image == 0 else 200.0  # image 0: RC = 1, no supplementary region
                change_base = 10.0 + image
                change_gad = change_base + EXTRA[image]
                rc_rows.append(
                    dict(dataset="d", arch="resnet18", method=method, hull_rule="top_q", target=target, image=image,
                         rc=area_gad / area_orig, rc_base=0.25, rc_base_hull=area_gad / area_orig, area_orig=area_orig,
                         area_gad=area_gad, consensus_share=0.3)
                )  # fmt: skip
                sup = np.nan if area_gad == area_orig else 0.001
                # the hull-matched baseline: GAD's hull area, the baseline's logit change
                masks = (
                    ("gad", change_gad / area_gad),
                    ("sup", sup),
                    ("base", change_base / 100.0),
                    ("base_hull", change_base / area_gad),
                )
                for mask, rs in masks:
                    rs_rows.append(
                        dict(dataset="d", arch="resnet18", method=method, hull_rule="top_q", target=target,
                             mask=mask, image=image, rs=rs)
                    )  # fmt: skip
    return pd.DataFrame(rc_rows), pd.DataFrame(rs_rows)


def test_a_smaller_baseline_hull_wins_on_rs_but_not_on_the_raw_change():
    rc, rs = hand_rows()
    table = baseline_check(rc, rs)
    assert list(table.index.get_level_values("method")) == ["S", "D", "GxI", "GB", "IG"]  # the run's order
    t = table.loc[("d", "resnet18", "S")]
    assert t["Base / GAD hull"] == pytest.approx((100 / 400 + 15 * 100 / 200) / 16)
    assert t["Base hull smaller"] == 1.0
    # per hull pixel the baseline's smaller hull wins; on the change itself GAD is ahead at 95%,
    # and undecided once the interval covers the rows' 10 comparisons (5 methods x 2 classes)
    assert t["RS GAD vs Base"] == t["RS, family-wise"] == "fails"
    assert t["logit change GAD vs Base"] == "holds"
    assert t["logit change, family-wise"] == "undecided (interval contains 0)"
    # at equal hull area GAD's larger logit change is a larger RS: ahead, as on the change itself
    assert t["Base(hull) / GAD hull"] == 1.0
    assert t["RS GAD vs Base(hull)"] == t["logit change GAD vs Base(hull)"] == t["GAD vs Base(hull), both"] == "holds"
    assert t["both, family-wise"] == "undecided (interval contains 0)"
    # one image of 16 per class has RC = 1, and so no supplementary region and no RS for it
    assert t["images with Sup"] == "15 / 15 of 16" and t["RC = 1"] == 1 / 16 and t["RC > 1"] == 0
    # and only images where GAD's RS is defined too, as the verdict's pairs (an empty GAD hull)
    empty = (rs["method"] == "saliency") & (rs["target"] == 1) & (rs["image"] == 1) & (rs["mask"] == "gad")
    assert baseline_check(rc, rs.assign(rs=rs["rs"].mask(empty))).loc[("d", "resnet18", "S"), "images with Sup"] == (
        "14 / 15 of 16"
    )
    # the RS verdict is the direction table's, word for word
    direction = direction_summary(rc, rs).set_index(["dataset", "arch", "method"])
    assert (table["RS GAD vs Base"] == direction["RS GAD vs Base"]).all()


def test_gad_against_the_hull_matched_baseline_needs_both_measures():
    """Its hull is a little larger than GAD's: GAD's RS gain is at least its logit-change gain
    over GAD's area, image by image, so a class keeps a verdict only where the two measures give
    it. Here the baseline's hull is 10% larger and its logit change larger by 0.5: per pixel GAD
    is ahead, on the change behind, and neither verdict stands."""
    rc, rs = hand_rows()
    rc = rc.assign(rc_base_hull=1.1 * rc["rc"])
    gad = rs[rs["mask"] == "gad"].set_index(["method", "target", "image"])["rs"]
    area = rc.set_index(["method", "target", "image"])["area_gad"]
    larger = ((gad * area + 0.5) / (1.1 * area)).to_numpy()
    rs.loc[rs["mask"] == "base_hull", "rs"] = larger  # the same row order as the gad rows
    t = baseline_check(rc, rs).loc[("d", "resnet18", "GB")]
    assert t["Base(hull) / GAD hull"] == pytest.approx(1.1)
    assert t["RS GAD vs Base(hull)"] == "holds" and t["logit change GAD vs Base(hull)"] == "fails"
    assert t["GAD vs Base(hull), both"] == t["both, family-wise"] == UNDECIDED

    rs = {1: "holds", 2: "holds", 3: "fails", 4: "undecided (interval contains 0)"}
    change = {1: "holds", 2: "undecided (interval contains 0)", 3: "fails", 4: "undecided (interval contains 0)"}
    assert both_measures(rs, change) == {1: "holds", 2: UNDECIDED, 3: "fails", 4: UNDECIDED}
    assert both_measures({1: "holds"}, {1: "fails"}) == {1: UNDECIDED}
    # a tie or an empty class both measures show passes through (it read "undecided" before)
    same = {1: NO_DIFFERENCE, 2: UNDEFINED, 3: NO_DIFFERENCE}
    assert both_measures(same, {1: NO_DIFFERENCE, 2: UNDEFINED, 3: "holds"}) == {
        1: NO_DIFFERENCE,
        2: UNDEFINED,
        3: UNDECIDED,
    }


@pytest.mark.parametrize(
    "ratio, hull, within",
    [(1.03, 0.5, "3.0% / undefined"), (1.03, 0.55, "6.4% / undefined"), (1.0, 0.5, "0.0% / undefined")],
)
def test_the_hull_matched_comparison_says_how_close_it_is_shown_to_be(ratio, hull, within):
    """GAD's hull 200 pixels and RS `ratio` x 0.05 in every image, the hull-matched baseline's
    RS 0.05 over `hull` x 400 pixels: in RS GAD is ahead by 3% of the baseline; in logit change
    by 3% at equal areas, and behind by 0.7 of 11 (6.4%) where the baseline's hull is 220 pixels.
    The larger share stands, and the differences are the same in every image, so two one-sided
    tests at 5% rule out any larger difference and no smaller one. Class 2's baseline RS is
    negative: no share of it is defined."""
    rc, rs = hand_rows()
    rc = rc.assign(area_gad=200.0, rc=0.5, rc_base_hull=hull)
    rs.loc[rs["mask"] == "base_hull", "rs"] = np.where(rs.loc[rs["mask"] == "base_hull", "target"] == 1, 0.05, -0.05)
    rs.loc[rs["mask"] == "gad", "rs"] = 0.05 * ratio
    t = baseline_check(rc, rs).loc[("d", "resnet18", "IG")]
    assert t["Base(hull) within"] == within


def test_the_summary_of_the_margins_counts_undefined_cells_as_not_within():
    import reviewer_checks

    row = reviewer_checks.closeness(pd.Series(["3.0% / undefined", "12.0% / 4.0%"]))
    assert row == {"median": "4.0%", "largest": "12.0%", "within 5%": "2 of 4", "within 10%": "2 of 4"}
    assert reviewer_checks.closeness(pd.Series(["undefined / undefined"]))["median"] == "undefined"


def test_the_baseline_check_refuses_rows_of_other_images():
    rc, rs = hand_rows()
    with pytest.raises(ValueError, match="other images"):
        baseline_check(rc[rc["image"] > 0], rs)


def test_sanity_label_comes_from_the_paired_interval():
    rows = []
    for method in METHODS:
        for target in (1, 2):
            for image in range(N):
                # saliency: GAD 0.05 below the baseline on every image, guided backprop 0.05 above;
                # deconvolution: +-0.01 around it; integrated gradients: +0.02 for class 1, -0.02 for
                # class 2, so 0 on every image once its classes are averaged
                gad = {
                    "saliency": 0.30,
                    "guided_backprop": 0.40,
                    "integrated_gradients": 0.35 + (0.02 if target == 1 else -0.02),
                }.get(method, 0.35 + 0.01 * PATTERN[image])
                for m, rho in (("orig", 0.6), ("gad", gad), ("base", 0.35)):
                    rows.append(dict(method=method, step=4, map=m, target=target, image=image, spearman=rho, ssim=0.5))
    t = sanity.verdicts(pd.DataFrame(rows))
    assert t.loc["saliency", "GAD"] == "more model-dependent"
    assert t.loc["saliency", "Spearman GAD - base (95% CI)"] == "-0.050 [-0.050, -0.050]"
    assert t.loc["deconvolution", "GAD"] == "like the baseline"
    assert t.loc["guided_backprop", "GAD"] == "less model-dependent"
    # per image, not per (image, class): the averaged differences are all 0
    assert t.loc["integrated_gradients", "Spearman GAD - base (95% CI)"] == "+0.000 [+0.000, +0.000]"
    # an earlier step is read from its own rows (controls_summary's step before the last): there
    # saliency's GAD is 0.05 above the baseline
    earlier = pd.DataFrame(rows).query("step == 4 and map != 'gad'").assign(step=3)
    earlier = pd.concat([earlier, earlier.query("map == 'base'").assign(map="gad", spearman=0.40)])
    both = pd.concat([pd.DataFrame(rows), earlier])
    e = sanity.gad_against_base(both, 3)
    assert e.loc["saliency", "label"] == "less model-dependent" and e.loc["saliency", "interval"].startswith("+0.050")
    assert sanity.verdicts(both).equals(t)  # the verdict stays the last step's
    # on fewer images than a verdict needs, every method says so, whatever its interval
    few = sanity.verdicts(pd.DataFrame(rows).query(f"image < {min_pairs() - 1}"))
    assert set(few["GAD"]) == {TOO_FEW}


def test_the_family_wise_verdicts_need_the_images_their_level_needs():
    """baseline_check's family-wise columns are at 1 - 0.05/10 here (5 methods x 2 classes), where a
    verdict needs 9 images (stats.min_pairs), the 95% ones 6: on 8 images only the family-wise say
    too few."""
    rc, rs = hand_rows()
    assert min_pairs(1 - 0.05 / 10) == 9
    t = baseline_check(rc[rc["image"] < 8], rs[rs["image"] < 8])
    for wide, family in (
        ("RS GAD vs Base", "RS, family-wise"),
        ("logit change GAD vs Base", "logit change, family-wise"),
    ):
        assert set(t[family]) == {TOO_FEW} and TOO_FEW not in set(t[wide]), (wide, set(t[wide]))
    assert set(t["both, family-wise"]) == {TOO_FEW}
    full = baseline_check(rc, rs)
    assert TOO_FEW not in set(full["RS, family-wise"]) | set(full["logit change, family-wise"])


def test_class_cells_read_a_joined_verdict_back():
    assert class_cells("fails") == ["fails", "fails"]
    assert class_cells("class 1 fails, class 2 undecided") == ["fails", "undecided (interval contains 0)"]


@pytest.mark.parametrize("kept", [min_pairs() - 1, min_pairs()])
def test_a_verdict_on_the_supplementary_region_of_too_few_images_says_so(kept):
    """Class 1 has a supplementary region on `kept` images only, every one of them far below
    GAD's RS: one image short of min_pairs its verdict is too few, at min_pairs it holds; class 2
    (every image but image 0) holds throughout. The baseline_check counts the same images."""
    rc, rs = hand_rows()
    sparse = (rs["mask"] == "sup") & (rs["target"] == 1) & (rs["image"] > kept)
    rs.loc[sparse, "rs"] = np.nan
    d = direction_summary(rc, rs)["RS GAD vs Sup"]
    first = TOO_FEW if kept < min_pairs() else HOLDS
    assert set(d) == {HOLDS if first == HOLDS else f"class 1 {TOO_FEW}, class 2 {HOLDS}"}
    counted = baseline_check(rc, rs)["images with Sup"]
    assert set(counted) == {f"{kept} / {N - 1} of {N}"}
    assert all(sup_cells(v, c) == [first, HOLDS] for v, c in zip(d, counted))


def test_a_verdict_an_earlier_table_gave_on_too_few_images_is_read_as_too_few():
    """Tables written before the minimum gave "holds" or "fails" on 1 to 5 images: the summaries
    read them by their "images with Sup" cell; a later table's verdicts read back unchanged."""
    assert sup_cells("class 1 fails, class 2 holds", "1 / 1 of 64") == [TOO_FEW, TOO_FEW]
    assert sup_cells("fails", f"{min_pairs() - 1} / {min_pairs()} of 64") == [TOO_FEW, FAILS]
    assert sup_cells("class 1 undefined, class 2 undecided", "0 / 3 of 64") == [UNDEFINED, TOO_FEW]
    assert sup_cells(f"class 1 {TOO_FEW}, class 2 holds", "2 / 40 of 64") == [TOO_FEW, HOLDS]
    with pytest.raises(ValueError, match="of 2 classes"):
        sup_cells("holds", "9 of 64")


def test_the_committed_summary_is_what_the_committed_runs_say(capsys):
    """figures/reviewer_checks.md (the README embeds it) is made from the committed runs' files,
    and is remade when they change."""
    import reviewer_checks

    runs = re.search(r"^CONTROL_RUNS \?= (.+)$", (ROOT / "Makefile").read_text(), re.M).group(1).split()
    reviewer_checks.main(*(str(ROOT / r) for r in runs))
    assert capsys.readouterr().out == (ROOT / "figures/reviewer_checks.md").read_text(), "run `make reviewer-checks`"


@pytest.mark.parametrize(
    "tool, table",
    [
        ("reviewer_checks", "baseline_check_top_q.csv"),
        ("direction_summary", "direction_frac_max.csv"),
        ("controls_summary", "controls_verdicts_resnet18.csv"),
        ("compare_runs", "direction_top_q.csv"),
        ("compare_runs", "models.csv"),
    ],
)
def test_a_file_left_by_another_run_stops_the_summary(tool, table, tmp_path, capsys):
    """A table whose stamp is not of the run its folder's RUN.json records (an earlier run's, or
    one written by a run stopped before its record) is not counted under that record."""
    import importlib
    import json
    import shutil

    run = tmp_path / "synthetic-default"
    shutil.copytree(ROOT / "figures" / "synthetic-default", run)
    other = tmp_path / "elsewhere" / "synthetic-default"  # compare_runs: the same run on another machine
    shutil.copytree(ROOT / "figures" / "synthetic-default", other)
    record = json.loads((other / "RUN.json").read_text())
    (other / "RUN.json").write_text(json.dumps({**record, "device": "cpu: Another CPU"}))
    csv = run / table  # its stamp's key, as another run's rows would give
    csv.write_text(re.sub(r'"key": "\w+"', '"key": "0123456789abcdef"', csv.read_text(), count=1))
    main = importlib.import_module(tool).main
    with pytest.raises(SystemExit) as stop:
        main(str(run), str(other)) if tool == "compare_runs" else main(str(run))
    assert "\n" not in str(stop.value.code) and f"{table} was not made from the rows of the run" in str(stop.value.code)
    assert capsys.readouterr().out == ""  # nothing half-printed into the file make writes


@pytest.mark.parametrize("tool", ["direction_summary", "reviewer_checks", "controls_summary"])
def test_two_runs_of_one_name_keep_their_own_rows_and_one_run_given_twice_is_refused(tool, tmp_path, capsys):
    """The summaries key their rows by each run's label: two folders of one name (a copy
    elsewhere, two sweeps' `seed-0`) get labels that tell them apart, where one label would let
    one run's rows replace the other's unseen; one folder given twice is refused in one line."""
    import importlib
    import os
    import shutil

    run = ROOT / "figures" / "cub-cpu"
    copy = tmp_path / "other" / "cub-cpu"
    shutil.copytree(run, copy)
    main = importlib.import_module(tool).main
    with pytest.raises(SystemExit) as stop:
        main(str(run), os.path.relpath(run))  # two spellings of one folder
    assert "\n" not in str(stop.value.code) and "cub-cpu is given twice among the runs" in str(stop.value.code)
    assert capsys.readouterr().out == ""
    if tool == "controls_summary":  # it reads runs/cub-cpu too, which is not in git
        return
    main(str(run), str(copy))
    rows = [line.split("|")[1].strip() for line in capsys.readouterr().out.splitlines() if "| resnet18 |" in line]
    assert {"figures/cub-cpu", "other/cub-cpu"} <= set(rows) and "cub-cpu" not in rows


def test_the_committed_controls_summary_is_of_the_committed_runs():
    """figures/controls_summary.md reads run folders, which git does not hold, so no test makes it
    again; its key line must still name the controls of the runs' committed records, else a run
    made again since has left it behind (`make controls-summary` with the runs here)."""
    from controls_summary import controls_keys

    from gadlib.runfiles import key_comment

    runs = re.search(r"^CONTROL_RUNS \?= (.+)$", (ROOT / "Makefile").read_text(), re.M).group(1).split()
    made_of = key_comment(*[k for run in runs for k in controls_keys(ROOT / run).values()])
    assert made_of in (ROOT / "figures" / "controls_summary.md").read_text().splitlines(), "run make controls-summary"
