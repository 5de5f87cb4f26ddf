"""What a reviewer would ask of the direction tables, for several runs side by side, from the
files notebooks 06 and 07 write (figures/<run>/baseline_check_<rule>.csv, sanity_<arch>.csv;
`tables.baseline_check` and `sanity.verdicts` say how each is computed):
1. the matched-area baseline keeps as many pixels as the consensus, not as much hull area: how
   large its hull is against GAD's, and the verdicts of GAD against it on RS (per hull pixel, as
   the direction tables) and on the logit change itself (RS x hull area), each also at a
   family-wise 95% over the run's class-level comparisons (Bonferroni), counted over (method,
   class) cells;
2. how many images each "RS GAD vs Sup" verdict rests on (the supplementary region is empty, so
   RS undefined, where GAD's hull equals the original's), and how often RC = 1 or RC > 1;
3. the sanity check: GAD's minus the baseline's Spearman with the trained map once every layer
   is random, with its paired interval;
4. the hull-matched baseline (the original's top pixels, as many as make a hull as large as
   GAD's): how close its hull comes to GAD's, and GAD against it on RS, on the logit change, and
   where both agree (its hull a little larger, RS leans to GAD and the change to it), per
   (method, class) cell, the last also family-wise;
5. how close GAD and the hull-matched baseline are shown to be: per (method, class) cell the
   margin, as a share of the baseline's mean, beyond which two one-sided tests at 5% rule out a
   difference on both measures (`tables.equivalence_bound_both`), summarised over the cells, and
   how much their hulls overlap (IoU).
Each CSV's stamp must carry a key of its run's RUN.json (a file left by an earlier run stops the tool).
Usage: python tools/reviewer_checks.py figures/synthetic-default figures/cub-cpu ...
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pandas as pd
from controls_summary import controls_arch
from folder_names import labels
from run_tables import read, rules_of

from gadlib.config import METHOD_SHORT
from gadlib.stats import count_text
from gadlib.tables import class_cells, images_with_sup, to_markdown

VERDICT_COLUMNS = ("RS GAD vs Base", "logit change GAD vs Base", "RS, family-wise", "logit change, family-wise")
HULL_MATCHED_COLUMNS = (
    "RS GAD vs Base(hull)",
    "logit change GAD vs Base(hull)",
    "GAD vs Base(hull), both",
    "both, family-wise",
)


def cell_counter(joined: pd.Series) -> Counter:
    """The verdicts of the (method, class) cells of the methods' joined verdicts, counted."""
    return Counter(v for j in joined for v in class_cells(j))


def counts(joined: pd.Series) -> str:
    """'holds / fails / undecided' over the (method, class) cells of the methods' verdicts, then
    the ties (every image equal) and the undefined ones (no image with both values)."""
    return count_text(cell_counter(joined))


def closeness(cells: pd.Series) -> dict:
    """Section 5's row: the equivalence bounds of the (method, class) cells ("3.0% / 2.5%" per
    method), their median and largest, and how many lie within 5% and 10%."""
    bounds = pd.Series([float(b.rstrip("%")) / 100 if b != "undefined" else float("nan")
                        for cell in cells for b in cell.split(" / ")])  # fmt: skip
    defined = bounds.dropna()
    return {
        "median": f"{defined.median():.1%}" if len(defined) else "undefined",
        "largest": f"{defined.max():.1%}" if len(defined) else "undefined",
        "within 5%": f"{(defined < 0.05).sum()} of {len(bounds)}",
        "within 10%": f"{(defined < 0.10).sum()} of {len(bounds)}",
    }


def baseline_table(folder: Path, rule: str) -> pd.DataFrame:
    """The run's baseline_check_<rule>.csv, stamp-checked, with every column the summaries read."""
    t = read(folder / f"baseline_check_{rule}.csv")
    if not {HULL_MATCHED_COLUMNS[0], "Base(hull) within", "GAD / Base(hull) hull IoU"} <= set(t.columns):
        sys.exit(f"error: {folder}/baseline_check_{rule}.csv predates its last columns: make the run anew")
    return t


def baseline_rows(folder: Path, label: str | None = None) -> tuple[dict, dict, dict, dict]:
    """Sections 1, 2, 4 and 5, one row per (run, architecture, hull rule), the run named `label`
    (the folder's name if None)."""
    area, sup, matched, close = {}, {}, {}, {}
    for rule, hulls in rules_of(folder).items():
        t = baseline_table(folder, rule)
        for arch, part in t.groupby("arch", sort=False):
            key = (label or folder.name, arch, hulls)
            area[key] = {
                "Base / GAD hull": part["Base / GAD hull"].mean(),
                "Base hull smaller": f"{part['Base hull smaller'].mean():.0%}",
                **{c: counts(part[c]) for c in VERDICT_COLUMNS},
            }
            images = [images_with_sup(cell) for cell in part["images with Sup"]]
            per_class = [n for counts, _ in images for n in counts]
            sup[key] = {
                "images with a Sup region": f"{min(per_class)}-{max(per_class)} of {images[0][1]}",
                "RC = 1": f"{part['RC = 1'].mean():.0%}",
                "RC > 1": f"{part['RC > 1'].mean():.1%}",
            }
            matched[key] = {
                "Base(hull) / GAD hull": part["Base(hull) / GAD hull"].mean(),
                **{c: counts(part[c]) for c in HULL_MATCHED_COLUMNS},
            }
            close[key] = {
                "GAD / Base(hull) IoU": part["GAD / Base(hull) hull IoU"].mean(),
                **closeness(part["Base(hull) within"]),
            }
    return area, sup, matched, close


def sanity(folder: Path, label: str | None = None) -> pd.Series | None:
    """Section 3: the run's first architecture with controls, None for a run without them."""
    arch = controls_arch(folder)
    if arch is None:
        return None
    t = read(folder / f"sanity_{arch}.csv", index_col=0)
    if "Spearman GAD - base (95% CI)" not in t.columns:
        sys.exit(f"error: {folder}/sanity_{arch}.csv has no interval column (made before it): run notebook 07 again")
    cells = {METHOD_SHORT[m]: f"{r['Spearman GAD - base (95% CI)']} ({r['GAD']})" for m, r in t.iterrows()}
    return pd.Series(cells, name=f"{label or folder.name} ({arch})")


def frame(rows: dict, names=("run", "arch", "hulls")) -> pd.DataFrame:
    t = pd.DataFrame.from_dict(rows, orient="index")
    t.index = pd.MultiIndex.from_tuples(t.index, names=list(names))
    return t


def main(*folders: str) -> None:
    if not folders:
        sys.exit(__doc__)
    area, sup, matched, close, checks = {}, {}, {}, {}, []
    for folder, label in zip(map(Path, folders), labels(folders)):  # everything read before anything is printed
        a, s, m, c = baseline_rows(folder, label)
        area.update(a)
        sup.update(s)
        matched.update(m)
        close.update(c)
        if (series := sanity(folder, label)) is not None:
            checks.append(series)
    print(
        "1. The matched-area baseline's hull against GAD's (mean area ratio; share of images where it is "
        "smaller, mean over methods), and GAD against it per (method, class) cell, holds / fails / undecided: "
        "on RS (per hull pixel, as the direction tables), on the logit change itself (RS x hull area), and both "
        "at a family-wise 95% over the run's class-level comparisons (Bonferroni)\n"
    )
    print(to_markdown(frame(area)) + "\n")
    print(
        "2. How many images the 'RS GAD vs Sup' verdicts rest on (fewest-most over methods and classes: the "
        "supplementary region is empty where GAD's hull equals the original's), and the share of images "
        "with RC = 1 and RC > 1 (mean over methods; an undefined RC left out)\n"
    )
    print(to_markdown(frame(sup)) + "\n")
    if checks:
        print(
            "3. Sanity check, every layer random: GAD's minus the matched-area baseline's Spearman with the "
            "trained map, per image (classes averaged), mean [95% paired bootstrap interval], and notebook 07's "
            "label from that interval\n"
        )
        print(to_markdown(pd.concat(checks, axis=1).rename_axis("method")) + "\n")
    print(
        "4. The hull-matched baseline (the original map's own top pixels, the fewest whose hull is as large as "
        "GAD's): its hull's area over GAD's (mean over methods; at least 1 by construction), and GAD against it "
        "per (method, class) cell, holds / fails / undecided: on RS (which leans to GAD, the smaller hull), on "
        "the logit change (which leans to the baseline), on both (a verdict both give), and on both at a "
        "family-wise 95% (Bonferroni)\n"
    )
    print(to_markdown(frame(matched)) + "\n")
    print(
        "5. How close GAD and the hull-matched baseline are shown to be: per (method, class) cell, the margin, "
        "as a share of the baseline's mean, beyond which two one-sided tests at 5% rule out a difference on "
        "both RS and the logit change (equivalence testing; a cell within 5% is shown to differ by less than "
        "5% on both); the median and largest over the cells, and how many lie within 5% and within 10%; and "
        "the mean IoU of the two hulls (mean over methods: near 1, nearly the same pixels)\n"
    )
    print(to_markdown(frame(close)))


if __name__ == "__main__":
    main(*sys.argv[1:])
