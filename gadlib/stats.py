"""Paired comparisons per image: mean difference, seeded bootstrap interval, share of wins, and
the verdict that the README's direction tables print."""

from __future__ import annotations

import numpy as np


def paired_bootstrap(diff: np.ndarray, resamples: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """Mean of the paired differences `diff` (NaN pairs left out) with a percentile bootstrap
    interval, and the share of pairs with a positive difference."""
    d = np.asarray(diff, dtype=float)
    d = d[~np.isnan(d)]
    if len(d) == 0:
        return {"n": 0, "mean": np.nan, "low": np.nan, "high": np.nan, "share_wins": np.nan}
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return {
        "n": len(d),
        "mean": float(d.mean()),
        "low": float(low),
        "high": float(high),
        "share_wins": float((d > 0).mean()),
    }


def equivalence_bound(diff, reference, resamples: int = 2000, seed: int = 0, alpha: float = 0.05) -> float:
    """How close two measures are shown to be: the smallest margin m, as a share of the mean of
    `reference` (the control's values, paired with `diff`), for which two one-sided tests at
    `alpha` show the mean paired difference inside (-m, m) of that mean (equivalence testing's
    TOST: the 1 - 2 alpha interval lies within the margin). The interval is a seeded percentile
    bootstrap of the ratio mean(diff) / mean(reference), both means from the same resampled
    pairs, so the control's own spread counts too. Pairs where either is NaN left out; NaN where
    a resampled reference mean is not above 0 (a share of it means nothing then)."""
    d, r = np.asarray(diff, dtype=float), np.asarray(reference, dtype=float)
    keep = ~(np.isnan(d) | np.isnan(r))
    d, r = d[keep], r[keep]
    if len(d) == 0:
        return np.nan
    pick = np.random.default_rng(seed).integers(0, len(d), size=(resamples, len(d)))
    means_r = r[pick].mean(axis=1)
    if r.mean() <= 0 or (means_r <= 0).any():
        return np.nan
    low, high = np.quantile(d[pick].mean(axis=1) / means_r, [alpha, 1 - alpha])
    return float(max(abs(low), abs(high)))


def image_means(diff) -> np.ndarray:
    """Per image, the mean of a difference indexed by (..., target, image) over the image's target
    classes, for `paired_bootstrap`: the image is the unit resampled. NaN left out, so an image
    with one defined class counts with that class alone (notebook 07's tables; the README says so)."""
    return diff.groupby(level="image").mean().to_numpy()


# The verdicts' words, in the order the tables count them; the tools that count them import these.
HOLDS, FAILS, UNDECIDED, NO_DIFFERENCE, TOO_FEW, UNDEFINED = (
    "holds",
    "fails",
    "undecided (interval contains 0)",
    "no difference",
    "too few images",
    "undefined",
)
VERDICTS = (HOLDS, FAILS, UNDECIDED, NO_DIFFERENCE, TOO_FEW, UNDEFINED)


def min_pairs(level: float = 0.95) -> int:
    """The fewest pairs a verdict at `level` may rest on: below it, even every pair on one side
    is not shown by the exact two-sided sign test (p = 2 x 0.5^n > 1 - level), while a
    percentile bootstrap of one pair is that pair itself, a one-sided "interval". 6 at 95%;
    10 at the family-wise 99.75% of 20 comparisons."""
    return int(np.ceil(np.log2(2 / (1 - level)) - 1e-9))


def count_text(n) -> str:
    """The summaries' cell for verdict counts `n` (verdict -> count, e.g. a Counter): "holds /
    fails / undecided", then the ties (every pair equal), those on too few images (`min_pairs`)
    and the undefined ones (nothing scored)."""
    cell = f"{n.get(HOLDS, 0)} / {n.get(FAILS, 0)} / {n.get(UNDECIDED, 0)}"
    for word, label in ((NO_DIFFERENCE, "ties"), (TOO_FEW, "too few images"), (UNDEFINED, "undefined")):
        if n.get(word, 0):
            cell += f" ({n[word]} {label})"
    return cell


def count_verdict(n: int, level: float = 0.95) -> str | None:
    """The verdict that the number of pairs alone decides: 'undefined' with none, 'too few images'
    under `min_pairs(level)`, else None (the interval decides)."""
    return UNDEFINED if n == 0 else TOO_FEW if n < min_pairs(level) else None


def verdict(low: float, high: float, n: int, level: float = 0.95) -> str:
    """The verdict of a `level` interval [low, high] over `n` pairs: 'holds' if the whole interval
    says GAD is better, 'fails' if it says worse, 'no difference' if every pair ties, else
    undecided; 'too few images' under `min_pairs(level)` pairs, 'undefined' with none."""
    if np.isnan(low) or np.isnan(high):
        return UNDEFINED
    if decided := count_verdict(n, level):
        return decided
    if low == high == 0:
        return NO_DIFFERENCE
    if low > 0:
        return HOLDS
    if high < 0:
        return FAILS
    return UNDECIDED


def cluster_bootstrap(values, clusters, resamples: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """Mean of `values` with a percentile bootstrap interval that resamples whole clusters (an
    image seen under several settings is one cluster), not single values; NaN values left out.
    n is the number of clusters."""
    v = np.asarray(values, dtype=float)
    c = np.asarray(clusters)
    keep = ~np.isnan(v)
    v, c = v[keep], c[keep]
    if len(v) == 0:
        return {"n": 0, "mean": np.nan, "low": np.nan, "high": np.nan}
    _, codes = np.unique(c, return_inverse=True)
    k = codes.max() + 1
    sums, counts = np.bincount(codes, weights=v, minlength=k), np.bincount(codes, minlength=k)
    pick = np.random.default_rng(seed).integers(0, k, size=(resamples, k))
    means = sums[pick].sum(axis=1) / counts[pick].sum(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return {"n": int(k), "mean": float(v.mean()), "low": float(low), "high": float(high)}
