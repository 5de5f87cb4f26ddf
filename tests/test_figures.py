"""gadlib.figures: what a figure draws is what its rows hold."""

import numpy as np
import pandas as pd

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
