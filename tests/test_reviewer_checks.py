"""tools/reviewer_checks.py on rows built by hand: the baseline's hull half the size of GAD's,
with the same raw logit change, so RS (per hull pixel) favours the baseline and the raw change
does not; and a run folder whose rows do not give the committed verdicts stops the tool."""

import json

import numpy as np
import pandas as pd
import pytest
import reviewer_checks

from gadlib.tables import direction_summary

N = 16  # images per class


def write_run(tmp_path, monkeypatch, direction_from_rows=True):
    rng = np.random.default_rng(0)
    rc_rows, rs_rows = [], []
    for rule in ("top_q", "frac_max"):
        for method in ("saliency", "deconvolution", "input_x_gradient", "guided_backprop", "integrated_gradients"):
            for target in (1, 2):
                for image in range(N):
                    area_orig, area_gad = 400.0, 200.0
                    change = 10.0 + rng.normal()  # the same logit change for GAD's hull and the baseline's
                    rc_rows.append(
                        dict(method=method, hull_rule=rule, target=target, image=image, label=target,
                             rc=area_gad / area_orig, rc_base=0.25, area_orig=area_orig, area_gad=area_gad,
                             consensus_share=0.3, dataset="d", arch="resnet18")
                    )  # fmt: skip
                    for mask, rs in (("gad", change / area_gad), ("sup", 0.001), ("base", change / 100.0)):
                        rs_rows.append(
                            dict(method=method, hull_rule=rule, target=target, mask=mask, image=image, rs=rs,
                                 dataset="d", arch="resnet18")
                        )  # fmt: skip
    runs, figures = tmp_path / "runs" / "hand", tmp_path / "figures" / "hand"
    (runs / "resnet18").mkdir(parents=True)
    figures.mkdir(parents=True)
    rc, rs = pd.DataFrame(rc_rows), pd.DataFrame(rs_rows)
    rc.to_csv(runs / "resnet18" / "rc.csv", index=False)
    rs.to_csv(runs / "resnet18" / "rs.csv", index=False)
    (figures / "RUN.json").write_text(json.dumps({"archs": ["resnet18"], "controls_keys": {}}))
    for rule in ("top_q", "frac_max"):
        table = direction_summary(rc[rc["hull_rule"] == rule], rs[rs["hull_rule"] == rule])
        if not direction_from_rows:
            table["RS GAD vs Base"] = "holds"
        table.to_csv(figures / f"direction_{rule}.csv", index=False)
    monkeypatch.setenv("GAD_RUNS_DIR", str(tmp_path / "runs"))
    return figures


def test_a_smaller_baseline_hull_wins_on_rs_but_not_on_the_raw_change(tmp_path, monkeypatch, capsys):
    figures = write_run(tmp_path, monkeypatch)
    reviewer_checks.main(str(figures))
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| hand ") and "top 50%" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    # Base hull / GAD hull, share smaller, RS vs Base, change vs Base, and both family-wise
    ties = "0 / 0 / 0 (10 ties)"
    assert cells[3:] == ["0.5000", "100%", "0 / 10 / 0", ties, "0 / 10 / 0", ties]
    assert "16-16 of 16" in out  # every image has a supplementary region


def test_rows_that_do_not_give_the_committed_verdicts_stop_the_tool(tmp_path, monkeypatch, capsys):
    figures = write_run(tmp_path, monkeypatch, direction_from_rows=False)
    with pytest.raises(SystemExit) as stop:
        reviewer_checks.main(str(figures))
    message = str(stop.value.code)
    assert "\n" not in message and "does not give the verdicts of" in message
    assert capsys.readouterr().out == ""  # nothing half-printed into the file make writes
