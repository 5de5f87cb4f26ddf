"""tools/reviewer_checks.py on rows built by hand: the baseline's hull half the size of GAD's, and
GAD's logit change a little larger than the baseline's, so RS (per hull pixel) favours the
baseline, the raw change favours GAD at 95% but not at the family-wise level; and a run folder
whose rows do not give the committed verdicts stops the tool."""

import json

import numpy as np
import pandas as pd
import pytest
import reviewer_checks

from gadlib.config import METHODS
from gadlib.tables import direction_summary

N = 16  # images per class
# GAD's logit change minus the baseline's, per image: mean 0.62, standard deviation 1, so a 95%
# interval excludes 0 (1.96 x 0.25 < 0.62) and the family-wise one over 10 tests does not (2.81 x 0.25)
PATTERN = np.tile([1.0, -1.0], N // 2)
EXTRA = 0.62 + PATTERN


def write_run(tmp_path, monkeypatch, direction_from_rows=True):
    rc_rows, rs_rows, sanity_rows = [], [], []
    for rule in ("top_q", "frac_max"):
        for method in METHODS:
            for target in (1, 2):
                for image in range(N):
                    area_orig = 400.0
                    area_gad = area_orig if image == 0 else 200.0  # image 0: GAD's hull is the original's (RC = 1)
                    change_base = 10.0 + image
                    change_gad = change_base + EXTRA[image]
                    rc_rows.append(
                        dict(method=method, hull_rule=rule, target=target, image=image, label=target,
                             rc=area_gad / area_orig, rc_base=0.25, area_orig=area_orig, area_gad=area_gad,
                             consensus_share=0.3, dataset="d", arch="resnet18")
                    )  # fmt: skip
                    sup = np.nan if area_gad == area_orig else 0.001  # no supplementary region where RC = 1
                    for mask, rs in (("gad", change_gad / area_gad), ("sup", sup), ("base", change_base / 100.0)):
                        rs_rows.append(
                            dict(method=method, hull_rule=rule, target=target, mask=mask, image=image, rs=rs,
                                 dataset="d", arch="resnet18")
                        )  # fmt: skip
    for method in METHODS:
        for target in (1, 2):
            for image in range(N):
                for m, rho in (("orig", 0.6), ("gad", 0.30 + 0.01 * PATTERN[image]), ("base", 0.35)):
                    sanity_rows.append(dict(method=method, step=4, randomised="all layers", layers=1, map=m,
                                            target=target, image=image, spearman=rho, ssim=0.5))  # fmt: skip
    runs, figures = tmp_path / "runs" / "hand", tmp_path / "figures" / "hand"
    (runs / "resnet18").mkdir(parents=True)
    figures.mkdir(parents=True)
    rc, rs = pd.DataFrame(rc_rows), pd.DataFrame(rs_rows)
    rc.to_csv(runs / "resnet18" / "rc.csv", index=False)
    rs.to_csv(runs / "resnet18" / "rs.csv", index=False)
    pd.DataFrame(sanity_rows).to_csv(runs / "resnet18" / "sanity.csv", index=False)
    record = {
        "archs": ["resnet18"],
        "controls_keys": {"resnet18": "k"},
        "parameters": {"methods": list(METHODS), "bootstrap": 2000, "seed": 0},
    }
    (figures / "RUN.json").write_text(json.dumps(record))
    for rule in ("top_q", "frac_max"):
        table = direction_summary(rc[rc["hull_rule"] == rule], rs[rs["hull_rule"] == rule])
        if not direction_from_rows:
            table.loc[0, "share RC<1"] += 0.01  # one method's share, as another run's rows would give
        table.to_csv(figures / f"direction_{rule}.csv", index=False)
    monkeypatch.setenv("GAD_RUNS_DIR", str(tmp_path / "runs"))
    return figures


def cells_of(out: str, *first: str) -> list[str]:
    """The cells of the Markdown row whose first cells are `first`."""
    rows = ([c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("|"))
    return next(cells for cells in rows if tuple(cells[: len(first)]) == first)


def test_a_smaller_baseline_hull_wins_on_rs_but_not_on_the_raw_change(tmp_path, monkeypatch, capsys):
    figures = write_run(tmp_path, monkeypatch)
    reviewer_checks.main(str(figures))
    out = capsys.readouterr().out
    cells = cells_of(out, "hand", "resnet18", "top 50%")
    # Base hull / GAD hull (image 0: 100/400, the rest 100/200), share smaller; RS vs Base;
    # logit change vs Base; both family-wise (10 tests: one architecture, five methods, two classes)
    ratio = f"{(100 / 400 + 15 * 100 / 200) / 16:.4f}"
    assert cells[3:] == [ratio, "100%", "0 / 10 / 0", "10 / 0 / 0", "0 / 10 / 0", "0 / 0 / 10"]
    # one image of 16 per class has RC = 1, and so no supplementary region
    section2 = out[out.index("2. How many") :]
    assert cells_of(section2, "hand", "resnet18", "10% of max")[3:] == ["15-15 of 16", "6%", "0.0%"]
    # the sanity check: GAD's Spearman 0.05 below the baseline's on every image
    assert cells_of(out, "S")[1] == "-0.050 [-0.055, -0.045] (GAD lower)"


def test_rows_that_do_not_give_the_committed_tables_stop_the_tool(tmp_path, monkeypatch, capsys):
    figures = write_run(tmp_path, monkeypatch, direction_from_rows=False)
    with pytest.raises(SystemExit) as stop:
        reviewer_checks.main(str(figures))
    message = str(stop.value.code)
    assert "\n" not in message and "does not give the verdicts of" in message and "of S)" in message
    assert capsys.readouterr().out == ""  # nothing half-printed into the file make writes
