"""The paper's verdicts of several runs, counted: for each run, architecture and hull rule, how
many of the five methods hold / fail / are undecided for each claim of the direction tables
(figures/<run>/direction_<rule>.csv, written by notebook 06), and which methods the two classes
split on. The README's prose cites these counts, so they come from the files, not from reading.
Usage: python tools/direction_summary.py figures/synthetic-default figures/cub-cpu ...
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pandas as pd
from folder_names import labels
from run_tables import read, rules_of

from gadlib.stats import VERDICTS, count_text
from gadlib.tables import to_markdown

CLAIMS = ("RC<1 for most", "RS GAD vs Sup", "RS GAD vs Base")


def count(verdicts: pd.Series) -> str:
    """'holds / fails / undecided' over the methods, then the methods whose classes disagree,
    each with its two verdicts ('c1 fails, c2 undecided')."""
    cell = count_text(Counter(verdicts))
    split = verdicts[~verdicts.isin(VERDICTS)]
    if len(split):  # "class 1 fails, class 2 undecided" (the tables write the split without the interval note)
        cell += "; split: " + "; ".join(f"{m} ({v.replace('class ', 'c')})" for m, v in split.items())
    return cell


def summary(folder: Path, label: str | None = None) -> pd.DataFrame:
    """The counts of the run in `folder`, its rows keyed by `label` (the folder's name if None)."""
    rows = {}
    for rule, hulls in rules_of(folder).items():
        t = read(folder / f"direction_{rule}.csv")
        for arch, part in t.groupby("arch", sort=False):
            part = part.set_index("method")
            rows[(label or folder.name, arch, hulls)] = {c: count(part[c]) for c in CLAIMS}
    return pd.DataFrame.from_dict(rows, orient="index")


def main(*folders: str) -> None:
    if not folders:
        sys.exit(__doc__)
    table = pd.concat([summary(Path(f), label) for f, label in zip(folders, labels(folders))])
    table.index = pd.MultiIndex.from_tuples(table.index, names=["run", "arch", "hulls"])
    print(
        "The paper's claims, per run, architecture and hull rule: methods (of 5) for which the claim "
        "holds / fails / is undecided for both classes (95% paired bootstrap interval), then the methods "
        "whose two classes disagree\n"
    )
    print(to_markdown(table))


if __name__ == "__main__":
    main(*sys.argv[1:])
