"""Put a run's Table 1 and Table 2 beside the paper's, and say per method whether the paper's
direction holds. Usage: python tools/compare_with_paper.py figures/catsdogs-cpu catsdogs [top_q]"""

import sys
from pathlib import Path

import pandas as pd

from gadlib import paper
from gadlib.metrics import to_markdown
from gadlib.runfiles import read_csv


def main(folder: str, dataset: str, rule: str = "top_q") -> None:
    folder = Path(folder)
    ours1, st1 = read_csv(folder / f"table1_{rule}.csv", index_col=[0, 1, 2])
    ours2, st2 = read_csv(folder / f"table2_{rule}.csv", index_col=[0, 1, 2])
    if st1 is None or st2 is None or st1["key"] != st2["key"]:
        sys.exit(f"error: {folder}'s table1 and table2 were not made together: rerun notebook 06")
    p1, p2 = paper.table1(), paper.table2()
    ours_dir = paper.direction(ours1, ours2).drop(columns="dataset")
    paper_dir = paper.direction(p1, p2)
    paper_dir = paper_dir[paper_dir["dataset"] == dataset].drop(columns="dataset")
    both = paper_dir.merge(ours_dir, on=["arch", "method"], suffixes=(" (paper)", " (ours)"))
    print(f"## {folder.name}, hull rule {rule}: the paper's direction per method\n")
    print(to_markdown(both.set_index(["arch", "method"]), floatfmt=".3f"))
    for name, ours, theirs in (("Table 1", ours1, p1), ("Table 2 (RS x 10^2)", ours2, p2)):
        theirs = theirs.loc[dataset]
        print(f"\n### {name}: paper ({dataset}) | ours\n")
        side = pd.concat({"paper": theirs, "ours": ours.droplevel(0)}, axis=1)
        side.columns = [f"{who} {m}" for who, m in side.columns]
        print(to_markdown(side, floatfmt=".4g"))
    print(f"\n<!-- gad key {st1['key']} -->")


if __name__ == "__main__":
    main(*sys.argv[1:])
