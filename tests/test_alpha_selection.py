"""Automatic alpha selection: the rule, and that it never looks at the evaluation images."""

import pandas as pd
import pytest
import torch

from gadlib import alpha_selection
from gadlib.alpha_selection import PAPER, candidate_report, choose, comparison, comparison_text, validation_split


def _report(spearman: dict) -> pd.DataFrame:
    return pd.DataFrame({"min_spearman": spearman}).rename_axis("alpha")


def test_choose_takes_the_largest_alphas_that_keep_the_logits_order():
    report = _report({1: 0.999, 2: 0.995, 4: 0.99, 6: 0.985, 8: 0.981, 12: 0.97, 16: 0.99})
    assert choose(report) == [4, 6, 8, 16]
    assert choose(report, k=2) == [8, 16]
    assert choose(report, min_spearman=0.99) == [1, 2, 4, 16]
    assert choose(_report({2: 0.5, 4: 0.4})) == [2]  # none kept: the smallest candidate
    assert choose(_report({2: 0.99, 4: 0.4})) == [2]  # fewer than k kept: all of them


def test_validation_split_is_seeded_disjoint_and_covers_the_training_split():
    fit, val = validation_split(100, 0.2, seed=3)
    assert len(val) == 20 and len(fit) == 80
    assert sorted(torch.cat([fit, val]).tolist()) == list(range(100))
    again = validation_split(100, 0.2, seed=3)
    assert torch.equal(again[1], val) and not torch.equal(validation_split(100, 0.2, seed=4)[1], val)


def test_the_report_depends_on_the_training_split_only(tmp_path):
    """Replacing every test image changes nothing: the rule never sees the evaluation images."""
    from gadlib import RunConfig
    from gadlib.data import load_dataset
    from gadlib.models import build_model

    cfg = RunConfig.build(profile="smoke", arch="resnet18", run_name="alpha-selection-test", runs_dir=str(tmp_path))
    data = load_dataset(cfg)
    torch.manual_seed(0)
    original = build_model("resnet18", 2, cfg.image_size).eval()
    first = candidate_report(cfg, data, original, candidates=(2, 8))
    data.test.images = torch.zeros_like(data.test.images)
    data.test.labels = 1 - data.test.labels
    second = candidate_report(cfg, data, original, candidates=(2, 8))
    pd.testing.assert_frame_equal(first, second)
    assert list(first.index) == [2, 8] and first["min_spearman"].between(-1, 1).all()


def counted(text: str) -> list[str]:
    """The "above / contain / below" cells of the comparison's last row (RS GAD - Base)."""
    last = text.split("lie below the measure's reference (RS GAD - Base 0):")[1].strip().splitlines()[-1]
    return [cell.strip() for cell in last.split("|")[2:-1]]


def test_comparison_marks_the_chosen_the_papers_and_the_best_in_hindsight():
    effects = pd.DataFrame(
        {
            "parameter": "alphas",
            "value": ["[2, 4, 6, 8]", "[4, 8, 12, 16]", "[1, 2, 3, 4]"],
            "arch": "resnet18",
            "method": "S",
            "measure": "RS GAD - Base",
            "mean": [0.1, 0.3, 0.2],
            "low": 0.0,
            "high": 1.0,
        }
    )
    # the hull areas describe the two hulls: a larger ratio is no better, and is left out
    areas = effects.assign(measure="Base / GAD hull", mean=[0.9, 0.99, 0.95])
    table = comparison(pd.concat([effects, areas]), chosen=[4, 8, 12, 16])
    assert table["setting"].tolist() == ["paper", "chosen", "other"] and PAPER == [2, 4, 6, 8]
    assert table["best in hindsight"].tolist() == [False, True, False]
    text = comparison_text(table)
    assert "0.3 [0, 1] *" in text and "intervals apart: none" in text and "Base / GAD hull" not in text
    assert counted(text) == ["0 / 1 / 0"] * 3  # every interval contains the reference 0
    apart = comparison(effects.assign(low=[0.0, 0.25, 0.1], high=[0.2, 0.35, 0.3]), chosen=[4, 8, 12, 16])
    text = comparison_text(apart)
    assert "S RS GAD - Base: chosen above the paper's" in text
    assert counted(text) == ["1 / 0 / 0", "0 / 1 / 0", "1 / 0 / 0"]  # the paper's interval starts at 0


def test_the_evaluation_reads_its_own_grids_points_only(monkeypatch):
    """The sweep's index may hold the point of an earlier choice of alphas (made from other
    training data), perhaps without its run folder here: the comparison reads this grid's points."""
    from gadlib import sweep, sweep_effects
    from gadlib.errors import GADInputError

    asked = {}
    monkeypatch.setattr(sweep, "run_sweep", lambda *a, **k: asked.update(grid=a[1]))

    def read_sweep(name, runs_dir=None, figures_dir=None, only=None):
        asked["only"] = only
        raise GADInputError("stop here")

    monkeypatch.setattr(sweep_effects, "read_sweep", read_sweep)
    with pytest.raises(GADInputError, match="stop here"):
        alpha_selection.evaluate([2, 3, 4, 6], {"dataset": "synthetic"}, "resnet18")
    assert asked["grid"] == {"alphas": [[2, 3, 4, 6], [2, 4, 6, 8], [1, 2, 3, 4], [8, 10, 12, 16]]}
    assert asked["only"] == ["alphas-2-3-4-6", "alphas-2-4-6-8", "alphas-1-2-3-4", "alphas-8-10-12-16"]
