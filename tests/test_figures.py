"""gadlib.figures: what a figure draws is what its rows hold."""

import numpy as np
import pandas as pd
import pytest

from gadlib import consensus, figures


def test_the_rs_figure_draws_every_region_notebook_05_scores(monkeypatch, tmp_path):
    drawn = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.append(fig) or path)
    rng = np.random.default_rng(0)
    rows = pd.DataFrame(
        [
            {"method": m, "hull_rule": "top_q", "arch": "resnet18", "mask": k, "rs": rng.random() + 0.01}
            for m in ("saliency", "integrated_gradients")
            for k in consensus.RS_REGIONS
            for _ in range(5)
        ]
    )
    figures.rs_distribution(rows, tmp_path / "rs.png", "RS")
    legend = drawn[0].legends[0]
    assert [t.get_text() for t in legend.get_texts()] == list(consensus.RS_REGIONS)


def test_the_verdicts_figure_refuses_what_it_has_no_panel_or_colour_for(tmp_path):
    row = {"bar": "birds", "hulls": "top-50%", "comparison": "RS GAD vs Sup", "verdict": "holds", "cells": 3}
    ok = pd.DataFrame([row])
    assert figures.verdict_shares(ok, tmp_path / "v.png", "verdicts").is_file()
    for field, value, what in (("comparison", "RS GAD vs Sup (renamed)", "panel"), ("verdict", "held", "colour")):
        with pytest.raises(ValueError, match=f"no {what} for the {field}s") as err:
            figures.verdict_shares(pd.DataFrame([{**row, field: value}]), tmp_path / "v.png", "verdicts")
        assert repr(value) in str(err.value)
