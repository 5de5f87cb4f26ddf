"""What a reviewer would ask of the direction tables, from the runs' per-image rows
(runs/<run>/<arch>/rc.csv, rs.csv and, for the first architecture, sanity.csv):
1. The matched-area baseline keeps as many pixels as the consensus, not as much hull area: how
   large its hull is against GAD's, and whether "RS GAD vs Base" (per hull pixel) keeps its
   verdicts on the raw logit change (RS x hull area). Both also at a family-wise level, the
   95% interval widened for the run's number of class-level tests (Bonferroni).
2. How many images each "RS GAD vs Sup" verdict rests on (the supplementary region is empty,
   so RS undefined, where GAD's hull equals the original's), and how often RC = 1 or RC > 1.
3. The sanity check's label ("like the baseline": GAD's and the baseline's Spearman within
   0.05) against a paired bootstrap interval of their difference over images.
Before anything, the RS verdicts, the share of RC < 1 and the consensus share recomputed from
runs/ (with the run's own bootstrap resamples and seed) must equal figures/<run>/direction_*.csv:
a run folder made by another run stops the tool instead of giving other numbers.
Usage: python tools/reviewer_checks.py figures/synthetic-default figures/cub-cpu ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from gadlib.config import METHOD_SHORT, runs_root
from gadlib.runfiles import read_csv
from gadlib.stats import FAILS, HOLDS, NO_DIFFERENCE, UNDECIDED, UNDEFINED, paired_bootstrap, verdict
from gadlib.tables import class_verdicts, joined_verdict, to_markdown

RULES = {"top_q": "top 50%", "frac_max": "10% of max"}
FAMILY_RESAMPLES = 20_000  # a 99.75% interval needs more resamples than 95%'s 2,000 for stable tails


def counts(found: list[str]) -> str:
    """'holds / fails / undecided' over class-level verdicts, the ties (every image equal) and the
    undefined ones (no image with both values)."""
    cell = " / ".join(str(sum(v == w for v in found)) for w in (HOLDS, FAILS, UNDECIDED))
    ties, undefined = sum(v == NO_DIFFERENCE for v in found), sum(v == UNDEFINED for v in found)
    return cell + (f" ({ties} ties)" if ties else "") + (f" ({undefined} undefined)" if undefined else "")


def rows_of(folder: Path, arch: str, name: str) -> pd.DataFrame:
    path = runs_root() / folder.name / arch / name
    rows, _ = read_csv(path)
    if rows is None:
        sys.exit(
            f"error: {path} is missing: these checks read the run's per-image rows; make the run {folder.name} first"
        )
    return rows


def paired_rows(folder: Path, arch: str, rule: str) -> pd.DataFrame:
    """One row per (method, target, image): RS of the GAD, supplementary and baseline regions,
    the hull areas of GAD's and the baseline's, and RC."""
    rc, rs = rows_of(folder, arch, "rc.csv"), rows_of(folder, arch, "rs.csv")
    rc, rs = rc[rc["hull_rule"] == rule], rs[rs["hull_rule"] == rule]
    wide = rs.pivot(index=["method", "target", "image"], columns="mask", values="rs")  # refuses a repeated row
    both = wide.reset_index().merge(rc, on=["method", "target", "image"], how="outer", validate="one_to_one")
    if len(both) != len(wide) or len(both) != len(rc):
        sys.exit(f"error: {folder.name}/{arch}: rc.csv and rs.csv hold other images ({rule}); remake the run")
    return both.assign(area_base=both["rc_base"] * both["area_orig"])


def area_and_counts(folder: Path, arch: str, rule: str, tests: int, boot: dict) -> tuple[dict, dict]:
    """Section 1's and 2's cells for one architecture and hull rule, and per method what the
    direction table writes (RS vs Base verdict, share RC<1, consensus share) for the consistency
    check. `boot`: the run's resamples and seed."""
    t = paired_rows(folder, arch, rule)
    found = {"rs": [], "change": [], "rs family": [], "change family": []}
    written, sup_n = {}, []
    for method, g in t.groupby("method", sort=False):
        by_class = {k: gk for k, gk in g.groupby("target")}
        rs = {k: (gk["gad"] - gk["base"]).to_numpy() for k, gk in by_class.items()}
        change = {
            k: (gk["gad"] * gk["area_gad"] - gk["base"] * gk["area_base"]).to_numpy() for k, gk in by_class.items()
        }
        per_class = class_verdicts(rs, boot["resamples"], boot["seed"])
        defined_rc = g["rc"].dropna()
        written[METHOD_SHORT[method]] = (
            joined_verdict(per_class),
            float((defined_rc < 1).mean()) if len(defined_rc) else np.nan,
            float(g["consensus_share"].mean()),
        )
        found["rs"] += per_class.values()
        found["change"] += class_verdicts(change, boot["resamples"], boot["seed"]).values()
        level = 1 - 0.05 / tests
        found["rs family"] += class_verdicts(rs, FAMILY_RESAMPLES, boot["seed"], level).values()
        found["change family"] += class_verdicts(change, FAMILY_RESAMPLES, boot["seed"], level).values()
        sup_n += [int(gk["sup"].notna().sum()) for gk in by_class.values()]
    defined = t.dropna(subset=["rc"])
    images = int(t.groupby(["method", "target"]).size().max())
    both = t[(t["area_gad"] > 0) & t["area_base"].notna()]  # images where both hulls exist
    cells = {
        "Base hull / GAD hull": float((both["area_base"] / both["area_gad"]).mean()),
        "Base hull smaller": f"{(both['area_base'] < both['area_gad']).mean():.0%}",
        "RS GAD vs Base": counts(found["rs"]),
        "logit change GAD vs Base": counts(found["change"]),
        f"RS, family-wise ({tests} tests)": counts(found["rs family"]),
        f"logit change, family-wise ({tests} tests)": counts(found["change family"]),
    }
    sup = {
        "images with a Sup region, of": f"{min(sup_n)}-{max(sup_n)} of {images}",
        "RC = 1": f"{(defined['rc'] == 1).mean():.0%}",
        "RC > 1": f"{(defined['rc'] > 1).mean():.1%}",
    }
    return {"cells": cells, "sup": sup}, written


def check_against_tables(folder: Path, arch: str, rule: str, written: dict) -> None:
    table, _ = read_csv(folder / f"direction_{rule}.csv")
    if table is None:
        sys.exit(f"error: {folder}/direction_{rule}.csv is missing: run notebook 06 for {folder.name} first")
    part = table[table["arch"] == arch].set_index("method")
    committed = {m: (r["RS GAD vs Base"], r["share RC<1"], r["consensus share"]) for m, r in part.iterrows()}
    differ = sorted(
        m
        for m in committed.keys() | written.keys()
        if m not in committed
        or m not in written
        or committed[m][0] != written[m][0]
        or not np.allclose(committed[m][1:], written[m][1:], rtol=1e-9, equal_nan=True)
    )
    if differ:
        sys.exit(
            f"error: runs/{folder.name}/{arch} does not give the verdicts of {folder}/direction_{rule}.csv "
            f"(RS vs Base verdict, share RC<1 or consensus share of {', '.join(differ)}): the run folder holds "
            "another run's rows; make the run again"
        )


def sanity(folder: Path, arch: str) -> pd.Series:
    """Per method: GAD's minus the baseline's Spearman with the trained map, every layer random,
    per image (its classes averaged), mean [95% interval], and the verdict of the interval."""
    rows = rows_of(folder, arch, "sanity.csv")
    last = rows[rows["step"] == rows["step"].max()]
    wide = last.pivot_table(index=["method", "target", "image"], columns="map", values="spearman")
    cells = {}
    for method, g in wide.groupby(level="method", sort=False):
        diff = (g["gad"] - g["base"]).groupby(level="image").mean().to_numpy()
        b = paired_bootstrap(diff)
        word = {HOLDS: "GAD higher", FAILS: "GAD lower"}.get(verdict(b["low"], b["high"]), "interval contains 0")
        cells[METHOD_SHORT[method]] = f"{b['mean']:+.3f} [{b['low']:+.3f}, {b['high']:+.3f}] ({word})"
    order = [m for m in METHOD_SHORT.values() if m in cells]  # the tables' order, not the alphabet's
    return pd.Series(cells, name=f"{folder.name} ({arch})").reindex(order)


def main(*folders: str) -> None:
    if not folders:
        sys.exit(__doc__)
    area, sup, checks = {}, {}, []
    for folder in map(Path, folders):
        record = json.loads((folder / "RUN.json").read_text())
        archs, settings = record["archs"], record["parameters"]
        boot = {"resamples": int(settings.get("bootstrap", 2000)), "seed": int(settings.get("seed", 0))}
        # the class-level RS vs Base tests of one run and hull rule: architectures x methods x 2 classes
        tests = len(archs) * len(settings["methods"]) * 2
        for rule, label in RULES.items():
            for arch in archs:
                cells, written = area_and_counts(folder, arch, rule, tests, boot)
                check_against_tables(folder, arch, rule, written)
                area[(folder.name, arch, label)] = cells["cells"]
                sup[(folder.name, arch, label)] = cells["sup"]
        controls = next(iter(json.loads((folder / "RUN.json").read_text()).get("controls_keys") or {}), None)
        if controls:
            checks.append(sanity(folder, controls))
    names = ["run", "arch", "hulls"]
    print(
        "1. The matched-area baseline's hull against GAD's (mean area ratio; share of images where it is "
        "smaller), and the verdicts of GAD against it per (method, class), holds / fails / undecided of 10: "
        "on RS (per hull pixel, as the direction tables), on the raw logit change (RS x hull area), and both "
        "with the 95% interval widened to a family-wise 95% over the run's class-level tests (Bonferroni)\n"
    )
    t = pd.DataFrame.from_dict(area, orient="index")
    t.index = pd.MultiIndex.from_tuples(t.index, names=names)
    print(to_markdown(t) + "\n")
    print(
        "2. How many images the 'RS GAD vs Sup' verdicts rest on (fewest-most over methods and classes: the "
        "supplementary region is empty where GAD's hull equals the original's), and the share of images "
        "(methods and classes pooled, an undefined RC left out) with RC = 1 and RC > 1\n"
    )
    t = pd.DataFrame.from_dict(sup, orient="index")
    t.index = pd.MultiIndex.from_tuples(t.index, names=names)
    print(to_markdown(t) + "\n")
    if checks:
        print(
            "3. Sanity check, every layer random: GAD's minus the matched-area baseline's Spearman with the "
            "trained map, per image (classes averaged), mean [95% paired bootstrap interval]; notebook 07's "
            "label calls within 0.05 'like the baseline'\n"
        )
        print(to_markdown(pd.concat(checks, axis=1).rename_axis("method")))


if __name__ == "__main__":
    main(*sys.argv[1:])
