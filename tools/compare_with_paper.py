"""Put a run's Table 1 and Table 2 beside the paper's, and say per method whether the paper's
direction holds. Usage: python tools/compare_with_paper.py figures/catsdogs-cpu catsdogs [top_q]"""

import argparse
import sys
from pathlib import Path

from gadlib import paper
from gadlib.config import THRESHOLD_RULES
from gadlib.runfiles import key_comment, read_csv
from gadlib.tables import paper_comparison


def main(folder: str, dataset: str, rule: str = "top_q") -> None:
    folder = Path(folder)
    for name in (f"table1_{rule}.csv", f"table2_{rule}.csv"):
        if not (folder / name).is_file():
            sys.exit(f"error: {folder / name} does not exist: give a run's figures folder made by notebook 06")
    ours1, st1 = read_csv(folder / f"table1_{rule}.csv", index_col=[0, 1, 2])
    ours2, st2 = read_csv(folder / f"table2_{rule}.csv", index_col=[0, 1, 2])
    if st1 is None or st2 is None or st1["key"] != st2["key"]:
        sys.exit(f"error: {folder}'s table1 and table2 were not made together: rerun notebook 06")
    print(paper_comparison(ours1, ours2, dataset, f"{folder.name}, hull rule {rule}"))
    print(f"\n{key_comment(st1['key'])}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", help="a run's figures folder, e.g. figures/catsdogs-cpu")
    datasets = sorted(paper.table1().index.unique(0))
    ap.add_argument("dataset", help=f"the paper's dataset to compare with: {' or '.join(datasets)}")
    ap.add_argument("rule", nargs="?", default="top_q", choices=THRESHOLD_RULES, help="hull rule (default top_q)")
    args = ap.parse_args()
    if args.dataset not in datasets:
        sys.exit(f"error: the paper has no dataset {args.dataset!r}: choose {' or '.join(datasets)}")
    main(args.folder, args.dataset, args.rule)
