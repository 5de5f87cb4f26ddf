"""Do the paper's directions survive a change of precision? Compares the direction tables of two
runs of the same models (e.g. precision=fp32 and precision=bf16) and prints a Markdown report.
Usage: python tools/compare_precisions.py figures/synthetic-fp32 figures/synthetic-bf16"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from gadlib.metrics import to_markdown
from gadlib.runfiles import read_csv

VERDICTS = ["RC holds", "RS GAD > Sup (holds)", "RS GAD > Base"]


def compare(a: Path, b: Path) -> tuple[pd.DataFrame, int]:
    rows = []
    for rule in ("top_q", "frac_max"):
        da, _ = read_csv(a / f"direction_{rule}.csv", index_col=[0, 1, 2])
        db, _ = read_csv(b / f"direction_{rule}.csv", index_col=[0, 1, 2])
        if da is None or db is None:
            continue
        for idx in da.index:
            for v in VERDICTS:
                rows.append({"hull rule": rule, "arch": idx[1], "method": idx[2], "verdict": v,
                             a.name: bool(da.loc[idx, v]), b.name: bool(db.loc[idx, v])})
    df = pd.DataFrame(rows)
    return df, int((df[a.name] != df[b.name]).sum())


def main(a: str, b: str) -> None:
    df, differ = compare(Path(a), Path(b))
    print(f"## Directions under {Path(a).name} and {Path(b).name}\n")
    print(f"{len(df) - differ} of {len(df)} verdicts agree.\n")
    changed = df[df.iloc[:, -2] != df.iloc[:, -1]]
    if len(changed):
        print("Verdicts that differ:\n")
        print(to_markdown(changed.set_index(["hull rule", "arch", "method", "verdict"])))


if __name__ == "__main__":
    main(*sys.argv[1:])
