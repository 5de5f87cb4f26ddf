"""Table layouts built from a run's per-image rows (the maths of RC and RS is in `metrics`)."""

from __future__ import annotations

import pandas as pd

from .config import METHOD_SHORT


def model_table(models: pd.DataFrame) -> pd.DataFrame:
    """Classifier and support quality, one row per model (alpha 0 = the original)."""
    cols = ["dataset", "arch", "alpha_c1", "alpha_c2", "accuracy", "mse", "spearman_logit1", "spearman_logit2"]
    return models.reindex(columns=cols).set_index(["dataset", "arch", "alpha_c1", "alpha_c2"])


def ground_truth_summary(gt: pd.DataFrame) -> pd.DataFrame:
    """Localisation against the object mask, for the image's own class: attribution mass inside
    the object and pointing-game hits (map scores), and hull IoU with the object under each hull
    rule; columns orig / gad / base (the matched-area baseline)."""
    own = gt[gt["own_class"]].assign(
        method=lambda d: pd.Categorical(d["method"].map(METHOD_SHORT), list(METHOD_SHORT.values()))
    )
    first_rule = own[own["hull_rule"] == own["hull_rule"].iloc[0]]  # map scores do not depend on it
    maps = first_rule.groupby(["arch", "method", "map"], observed=True)[["mass_inside", "pointing_hit"]].mean()
    maps = maps.unstack("map")
    maps.columns = [f"{metric} {kind}" for metric, kind in maps.columns]
    hulls = own.groupby(["arch", "method", "hull_rule", "map"], observed=True)["hull_iou"].mean()
    hulls = hulls.unstack(["hull_rule", "map"])
    hulls.columns = [f"hull IoU {rule} {kind}" for rule, kind in hulls.columns]
    table = pd.concat([maps, hulls], axis=1)
    order = {"orig": 0, "gad": 1, "base": 2}
    return table[sorted(table.columns, key=lambda c: (c.rsplit(" ", 1)[0], order[c.rsplit(" ", 1)[1]]))]
