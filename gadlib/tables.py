"""Every table layout: the paper's Table 1 and 2, the direction verdicts, model quality and
ground truth from a run's per-image rows (the maths of RC and RS is in `metrics`), and the
comparison with the paper's own tables (transcribed in `paper`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import paper
from .config import METHOD_SHORT, METHODS
from .stats import (
    FAILS,
    HOLDS,
    NO_DIFFERENCE,
    UNDECIDED,
    count_verdict,
    equivalence_bound,
    paired_bootstrap,
    verdict,
)


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


def _method_columns(df: pd.DataFrame) -> list[str]:
    present = set(df["method"])
    # the paper's five in its order, then any other method (GAD on other captum methods)
    return [METHOD_SHORT[m] for m in METHODS if m in present] + sorted(present - set(METHOD_SHORT))


def method_label(method: str) -> str:
    """The short column name of a method (S, D, GxI, GB, IG), or its own name for any other."""
    return METHOD_SHORT.get(method, method)


def rows_of_evaluation(
    evaluation: pd.DataFrame, method: str, dataset: str = "own", arch: str = "model"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`GAD.evaluate`'s per-image frame as the pipeline's RC and RS rows (targets numbered from
    1), so that table1, table2 and direction_summary lay out any class of any model."""
    base = evaluation.assign(method=method, dataset=dataset, arch=arch, target=evaluation["target"] + 1)
    masks = [c for c in evaluation.columns if c.startswith("rs_")]  # rs_gad, rs_sup, rs_base, rs_base_hull
    rs = base.melt(
        id_vars=["dataset", "arch", "method", "target", "image"], value_vars=masks, var_name="mask", value_name="rs"
    )
    return base.drop(columns=masks), rs.assign(mask=rs["mask"].str.removeprefix("rs_"))


def table1(rc_rows: pd.DataFrame) -> pd.DataFrame:
    """Counts of RC >= 1 (Orig.k) and RC < 1 (GAD k) per target class k, laid out like the
    paper's Table 1: rows dataset / architecture / Orig.1, GAD 1, Orig.2, GAD 2."""
    d = rc_rows.dropna(subset=["rc"]).assign(m=lambda t: t["method"].map(method_label))
    targets = sorted(rc_rows["target"].unique())  # 1 and 2 in the paper; any class of an m-class model
    rows = []
    for (dataset, arch), g in d.groupby(["dataset", "arch"], sort=False):
        for k in targets:
            gk = g[g["target"] == k]
            orig = gk[gk["rc"] >= 1].groupby("m").size()
            gad = gk[gk["rc"] < 1].groupby("m").size()
            rows.append({"dataset": dataset, "arch": arch, "row": f"Orig.{k}", **orig.to_dict()})
            rows.append({"dataset": dataset, "arch": arch, "row": f"GAD {k}", **gad.to_dict()})
    cols = _method_columns(rc_rows)
    out = pd.DataFrame(rows).set_index(["dataset", "arch", "row"]).reindex(columns=cols)
    return out.fillna(0).astype(int)


def table2(rs_rows: pd.DataFrame, masks: tuple[str, ...] = ("sup", "gad")) -> pd.DataFrame:
    """Mean RS x 10^2 per target class for the supplementary (Sup.k) and GAD masks, laid out
    like the paper's Table 2. NaN RS (empty mask) is left out of the mean."""
    names = {"sup": "Sup.{k}", "gad": "GAD {k}", "base": "Base {k}", "base_hull": "Base(hull) {k}"}
    d = rs_rows.assign(m=lambda t: t["method"].map(method_label))
    targets = sorted(rs_rows["target"].unique())
    rows = []
    for (dataset, arch), g in d.groupby(["dataset", "arch"], sort=False):
        for k in targets:
            for mask in masks:
                gm = g[(g["target"] == k) & (g["mask"] == mask)]
                means = (gm.groupby("m")["rs"].mean() * 100).to_dict()
                rows.append({"dataset": dataset, "arch": arch, "row": names[mask].format(k=k), **means})
    return pd.DataFrame(rows).set_index(["dataset", "arch", "row"]).reindex(columns=_method_columns(rs_rows))


def class_verdicts(diffs: dict[int, np.ndarray], resamples: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """The verdict of each target class's paired differences (NaN pairs left out)."""
    intervals = {k: paired_bootstrap(d, resamples, seed, level) for k, d in diffs.items()}
    return {k: verdict(b["low"], b["high"], b["n"], level) for k, b in intervals.items()}


def joined_verdict(found: dict[int, str]) -> str:
    """One verdict where the classes agree, else "class 1 fails, class 2 undecided"."""
    if len(set(found.values())) == 1:
        return next(iter(found.values()))
    return ", ".join(f"class {k} {v.split(' (')[0]}" for k, v in sorted(found.items()))


def direction_summary(
    rc_rows: pd.DataFrame, rs_rows: pd.DataFrame, resamples: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Per architecture and method, the paper's two directions and the baseline, as verdicts from
    per-image statistics for each target class (the paper's tables are per class too); seeded
    bootstrap over images, 95%: "holds", "fails" or "undecided (interval contains 0)" ("too few
    images" under `stats.min_pairs`, 6), the same for both classes, or "class 1 ..., class 2 ..."
    when the classes disagree.
    - RC<1 for most: the share of images with RC < 1 is above one half;
    - RS GAD vs Sup: RS of the GAD hull above that of the supplementary region, image by image;
    - RS GAD vs Base: above that of the matched-area baseline's hull.
    Also the consensus share of the pixels, and the share of images with RC < 1 (both classes)."""

    def per_class(diffs: dict[int, np.ndarray]) -> str:
        return joined_verdict(class_verdicts(diffs, resamples, seed))

    out = []
    for (dataset, arch, method), g in rc_rows.groupby(["dataset", "arch", "method"], sort=False):
        r = rs_rows[(rs_rows["dataset"] == dataset) & (rs_rows["arch"] == arch) & (rs_rows["method"] == method)]
        if r.duplicated(["target", "image", "mask"]).any():  # two hull rules' rows, say: pivot_table would average them
            raise ValueError(
                f"direction_summary: {arch} {method} has two RS rows for one image, class and mask "
                "(rows of two hull rules or two runs?): give the rows of one"
            )
        wide = r.pivot(index=["target", "image"], columns="mask", values="rs")
        defined = g.dropna(subset=["rc"])  # an empty original hull has no RC; table1 leaves it out too
        targets = sorted(g["target"].unique())
        out.append(
            {
                "dataset": dataset,
                "arch": arch,
                "method": method_label(method),
                "consensus share": float(g["consensus_share"].mean()),
                "share RC<1": float((defined["rc"] < 1).mean()) if len(defined) else np.nan,
                "RC<1 for most": per_class(
                    {k: (defined.loc[defined["target"] == k, "rc"] < 1).to_numpy(float) - 0.5 for k in targets}
                ),
                "RS GAD vs Sup": per_class({k: (wide.loc[k, "gad"] - wide.loc[k, "sup"]).to_numpy() for k in targets}),
                "RS GAD vs Base": per_class(
                    {k: (wide.loc[k, "gad"] - wide.loc[k, "base"]).to_numpy() for k in targets}
                ),
            }
        )
    return pd.DataFrame(out)


# the rows' column with the IoU of GAD's hull and the hull-matched baseline's (GAD.evaluate's
# rows, and notebook 06's from the stored hulls: report.with_hull_overlap)
HULL_OVERLAP = "iou_gad_base_hull"

FAMILY_RESAMPLES = 20_000  # a family-wise interval's far tails need more resamples than 95%'s 2,000


def logit_change(t: pd.DataFrame, mask: str) -> pd.Series:
    """Per image: the logit change of `mask`'s hull, RS x hull area. From rows with the RS column
    `mask` beside the RC columns area_gad (for gad), or area_orig and rc_<mask>."""
    area = t["area_gad"] if mask == "gad" else t[f"rc_{mask}"] * t["area_orig"]
    return t[mask] * area


def logit_change_gain(t: pd.DataFrame, baseline: str = "base") -> pd.Series:
    """Per image: GAD's logit change minus a baseline's (RS is per hull pixel, and the
    matched-area baseline's hull is smaller than GAD's for most images, the hull-matched
    baseline's a little larger)."""
    return logit_change(t, "gad") - logit_change(t, baseline)


def both_measures(rs: dict, change: dict) -> dict:
    """Per class, GAD against the hull-matched baseline on both measures: its hull is at least
    GAD's (the fewest top pixels that reach GAD's area), so image by image GAD's RS gain times
    GAD's hull area is at least its logit-change gain (RS leans to GAD), and only a verdict both
    measures give is kept: holds, fails, no difference (every image tied on both), too few images
    or undefined (no image on either); any other pair is undecided."""
    return {k: rs[k] if rs[k] == change[k] and rs[k] != UNDECIDED else UNDECIDED for k in rs}


def hull_areas(t: pd.DataFrame) -> pd.DataFrame:
    """Per image where both hulls exist (GAD's not empty, the baseline's defined): the matched-area
    baseline's hull area over GAD's, whether the baseline's is the smaller (1.0 or 0.0), and the
    hull-matched baseline's hull area over GAD's. From rows with the RC columns rc, rc_base,
    rc_base_hull, area_gad and area_orig."""
    area_base = t["rc_base"] * t["area_orig"]
    both = (t["area_gad"] > 0) & area_base.notna()
    return pd.DataFrame(
        {
            "Base / GAD hull": area_base[both] / t.loc[both, "area_gad"],
            # from the two ratios to the same area: a tie stays a tie (a/b*b need not be a)
            "Base hull smaller": (t.loc[both, "rc_base"] < t.loc[both, "rc"]).astype(float),
            # the hull-matched baseline's: at least 1 by construction, and how close to it
            "Base(hull) / GAD hull": (t["rc_base_hull"] * t["area_orig"])[both] / t.loc[both, "area_gad"],
        }
    )


def percent(share: float) -> str:
    return "undefined" if np.isnan(share) else f"{share:.1%}"


def equivalence_bound_both(g: pd.DataFrame, resamples: int = 2000, seed: int = 0) -> float:
    """For one class's rows of `baseline_check`: the larger of the two equivalence bounds of GAD
    against the hull-matched baseline (`stats.equivalence_bound`, TOST at 5%), on RS and on the
    logit change, each as a share of the baseline's mean: a larger difference, on either measure,
    is ruled out."""
    bounds = (
        equivalence_bound(g["gad"] - g["base_hull"], g["base_hull"], resamples, seed),
        equivalence_bound(g["change_hull"], g["change_of_base_hull"], resamples, seed),
    )
    return np.nan if np.isnan(bounds).any() else max(bounds)


def baseline_check(rc_rows: pd.DataFrame, rs_rows: pd.DataFrame, resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """What a reviewer asks of the direction table, per architecture and method (one hull rule):
    - the matched-area baseline keeps as many pixels as the consensus, not as much hull area: the
      mean ratio of its hull's area to GAD's, and the share of images where it is smaller;
    - "RS GAD vs Base" (per hull pixel, as the direction table) beside the same comparison on the
      logit change itself (RS x hull area), each also at a family-wise 95% over the rows' class-level
      comparisons (Bonferroni over architectures x methods x classes; a family-wise verdict needs
      `stats.min_pairs` of its level, 10 images for 20 comparisons);
    - how many images per class the "RS GAD vs Sup" verdict rests on (an empty supplementary
      region, where GAD's hull equals or holds the original's, has no RS), and the shares of RC = 1
      and RC > 1 (an undefined RC left out);
    - the hull-matched baseline (as much hull as GAD, `hulls.hull_matched_map`): its hull's area
      over GAD's, GAD against it on RS and on the logit change, and where both measures agree
      (`both_measures`), also family-wise; and per class the margin within which the two are
      shown equivalent on both measures (`equivalence_bound_both`, a share of the baseline's mean),
      and the mean IoU of its hull and GAD's (where the rows have `HULL_OVERLAP`; images where
      both hulls are empty left out)."""
    keys = ["dataset", "arch", "method", "target", "image"]
    wide = rs_rows.pivot(index=keys, columns="mask", values="rs")  # refuses a repeated row
    # rc_rows first: an inner merge keeps the left's order, the run's methods (the pivot sorted them)
    t = rc_rows.merge(wide.reset_index(), on=keys, how="inner", validate="one_to_one")
    if len(t) != len(wide) or len(t) != len(rc_rows):
        raise ValueError("baseline_check: the RC and RS rows are of other images")
    t = t.assign(change=logit_change_gain(t), change_hull=logit_change_gain(t, "base_hull"))
    t = t.assign(change_of_base_hull=logit_change(t, "base_hull"))
    level = 1 - 0.05 / rc_rows.groupby(["arch", "method", "target"]).ngroups
    out = []
    for (dataset, arch, method), g in t.groupby(["dataset", "arch", "method"], sort=False):
        by_class = dict(iter(g.groupby("target")))
        rs = {k: (gk["gad"] - gk["base"]).to_numpy() for k, gk in by_class.items()}
        change = {k: gk["change"].to_numpy() for k, gk in by_class.items()}
        rs_hull = {k: (gk["gad"] - gk["base_hull"]).to_numpy() for k, gk in by_class.items()}
        change_hull = {k: gk["change_hull"].to_numpy() for k, gk in by_class.items()}
        rs_hull_95, change_hull_95 = (class_verdicts(d, resamples, seed) for d in (rs_hull, change_hull))
        hulls = hull_areas(g)
        defined = g["rc"].dropna()
        out.append(
            {
                "dataset": dataset,
                "arch": arch,
                "method": method_label(method),
                "Base / GAD hull": float(hulls["Base / GAD hull"].mean()),
                "Base hull smaller": float(hulls["Base hull smaller"].mean()),
                "RS GAD vs Base": joined_verdict(class_verdicts(rs, resamples, seed)),
                "logit change GAD vs Base": joined_verdict(class_verdicts(change, resamples, seed)),
                "RS, family-wise": joined_verdict(class_verdicts(rs, FAMILY_RESAMPLES, seed, level)),
                "logit change, family-wise": joined_verdict(class_verdicts(change, FAMILY_RESAMPLES, seed, level)),
                # the images the "RS GAD vs Sup" verdicts rest on: both regions' RS defined
                "images with Sup": " / ".join(
                    f"{int((gk['gad'] - gk['sup']).notna().sum())}" for gk in by_class.values()
                )
                + f" of {int(g.groupby('target').size().max())}",
                "RC = 1": float((defined == 1).mean()),
                "RC > 1": float((defined > 1).mean()),
                "Base(hull) / GAD hull": float(hulls["Base(hull) / GAD hull"].mean()),
                "RS GAD vs Base(hull)": joined_verdict(rs_hull_95),
                "logit change GAD vs Base(hull)": joined_verdict(change_hull_95),
                "GAD vs Base(hull), both": joined_verdict(both_measures(rs_hull_95, change_hull_95)),
                "both, family-wise": joined_verdict(
                    both_measures(
                        class_verdicts(rs_hull, FAMILY_RESAMPLES, seed, level),
                        class_verdicts(change_hull, FAMILY_RESAMPLES, seed, level),
                    )
                ),
                # the two hulls' overlap: near 1, the same region (the pipeline's and evaluate's rows have it)
                "GAD / Base(hull) hull IoU": float(g[HULL_OVERLAP].mean()) if HULL_OVERLAP in g else np.nan,
                # "not shown better or worse" is not "equal": how large a difference the data rule out
                "Base(hull) within": " / ".join(
                    percent(equivalence_bound_both(gk, resamples, seed)) for gk in by_class.values()
                ),
            }
        )
    return pd.DataFrame(out).set_index(["dataset", "arch", "method"])


def class_cells(joined: str) -> list[str]:
    """The class-level verdicts a joined verdict stands for, two classes assumed where it is one
    word ("fails" -> [fails, fails]; "class 1 fails, class 2 undecided" -> [fails, undecided])."""
    if not joined.startswith("class "):
        return [joined, joined]
    words = {HOLDS: HOLDS, FAILS: FAILS, "undecided": UNDECIDED, "no difference": NO_DIFFERENCE}
    return [words.get(part.split(" ", 2)[2], part.split(" ", 2)[2]) for part in joined.split(", ")]


def images_with_sup(cell: str) -> tuple[list[int], int]:
    """baseline_check's "images with Sup" cell ("61 / 63 of 64") -> ([61, 63], 64): per class, the
    images both RS values are defined on, of the images scored."""
    per_class, of = cell.split(" of ")
    return [int(n) for n in per_class.split(" / ")], int(of)


def sup_cells(joined: str, images: str) -> list[str]:
    """The class cells of a direction table's "RS GAD vs Sup" verdict `joined`, each class with
    fewer images (`images`, its baseline_check cell) than `min_pairs()` read as too few, and with
    none as undefined. Tables written before that minimum (notebook 06 before 2026-12-08) gave a
    verdict on 1 to 5 images there; a later table already says so, and reads unchanged."""
    cells, (per_class, _) = class_cells(joined), images_with_sup(images)
    if len(cells) != len(per_class):
        raise ValueError(f"sup_cells: {joined!r} is of {len(cells)} classes, {images!r} of {len(per_class)}")
    return [count_verdict(n) or c for c, n in zip(cells, per_class)]


# The direction table's verdict columns, and what tables made before the paired verdicts called
# them (True / False on mean values): tools comparing runs across that change read both.
DIRECTION_VERDICTS = {
    "RC": ("RC<1 for most", "RC holds"),
    "RS>Sup": ("RS GAD vs Sup", "RS GAD > Sup (holds)"),
    "RS>Base": ("RS GAD vs Base", "RS GAD > Base"),
}


def direction_verdict(table: pd.DataFrame, idx, short: str) -> str:
    """The verdict `short` ("RC", "RS>Sup", "RS>Base") of row `idx`, old or new table alike."""
    new, old = DIRECTION_VERDICTS[short]
    if new in table.columns:
        return str(table.loc[idx, new])
    value = table.loc[idx, old]
    return HOLDS if str(value) == "True" or value is True else FAILS


def opposite_verdicts(a: str, b: str) -> bool:
    """Whether two verdicts of direction_summary contradict each other: one holds and the other
    fails for some class ("undecided" contradicts neither)."""

    def per_class(text: str) -> dict:  # {class: outcome}, or {None: outcome} when both classes agree
        if not text.startswith("class "):
            return {None: text.split(" (")[0]}
        return {int(k): v for k, v in (part[len("class ") :].split(" ", 1) for part in text.split(", "))}

    va, vb = per_class(a), per_class(b)
    classes = (set(va) | set(vb)) - {None} or {None}
    return any({va.get(k, va.get(None)), vb.get(k, vb.get(None))} == {HOLDS, FAILS} for k in classes)


def to_markdown(df: pd.DataFrame, floatfmt: str = ".4f") -> str:
    return df.reset_index().to_markdown(index=False, floatfmt=floatfmt)


def paper_direction(t1: pd.DataFrame, t2: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, arch) and method: share of images with RC < 1 over both classes, and whether
    the GAD mask's mean RS beats the supplementary mask's for both classes (False where one class's
    does not; else "undefined" where a class has no supplementary region, so no mean)."""
    rows = []
    for (dataset, arch), g1 in t1.groupby(level=[0, 1], sort=False):
        g1 = g1.droplevel([0, 1])
        g2 = t2.xs((dataset, arch), level=[0, 1])
        for m in g1.columns:
            gad = g1.loc[["GAD 1", "GAD 2"], m].sum()
            total = g1[m].sum()
            means = [(g2.loc[f"GAD {k}", m], g2.loc[f"Sup.{k}", m]) for k in (1, 2)]
            defined = [bool(gad > sup) for gad, sup in means if not (pd.isna(gad) or pd.isna(sup))]
            # a class that fails decides; else a class without a mean leaves it open
            rs = False if not all(defined) else "undefined" if len(defined) < len(means) else True
            rows.append(
                {
                    "dataset": dataset,
                    "arch": arch,
                    "method": m,
                    "share RC<1": gad / total if total else float("nan"),
                    "RS GAD > Sup": rs,
                }
            )
    return pd.DataFrame(rows)


def paper_comparison(ours1: pd.DataFrame, ours2: pd.DataFrame, dataset: str, title: str) -> str:
    """Markdown: per method, the paper's direction beside ours, then our Table 1 and Table 2 beside
    the paper's for `dataset` ("catsdogs" or "birds")."""
    p1, p2 = paper.table1(), paper.table2()
    ours_dir = paper_direction(ours1, ours2).drop(columns="dataset")
    paper_dir = paper_direction(p1, p2)
    paper_dir = paper_dir[paper_dir["dataset"] == dataset].drop(columns="dataset")
    both = paper_dir.merge(ours_dir, on=["arch", "method"], suffixes=(" (paper)", " (ours)"))
    parts = [f"## {title}: the paper's direction per method\n", to_markdown(both.set_index(["arch", "method"]), ".3f")]
    for name, ours, theirs in (("Table 1", ours1, p1), ("Table 2 (RS x 10^2)", ours2, p2)):
        side = pd.concat({"paper": theirs.loc[dataset], "ours": ours.droplevel(0)}, axis=1)
        side.columns = [f"{who} {m}" for who, m in side.columns]
        parts += [f"\n### {name}: paper ({dataset}) | ours\n", to_markdown(side, ".4g")]
    return "\n".join(parts)
