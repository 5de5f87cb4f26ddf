"""Do the paper's directions survive a change of precision? Compares the direction verdicts of
two runs of the same trained models that differ only in `precision` (fp32 and bf16) and prints a
Markdown report whose table sums them up per hull rule and architecture.
Usage: python tools/compare_precisions.py figures/synthetic-fp32 figures/synthetic-bf16"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from gadlib.config import METHOD_SHORT
from gadlib.runfiles import read_csv
from gadlib.tables import DIRECTION_VERDICTS, direction_verdict, to_markdown


def same_models(a: Path, b: Path) -> tuple[dict, dict]:
    """The two RUN.json records, after checking that the runs differ only in precision."""
    ra, rb = (json.loads((f / "RUN.json").read_text()) for f in (a, b))
    pa = {k: v for k, v in ra["parameters"].items() if k not in ("precision", "run_name")}
    pb = {k: v for k, v in rb["parameters"].items() if k not in ("precision", "run_name")}
    models_a = {arch: k["models"] for arch, k in ra["keys"].items()}
    models_b = {arch: k["models"] for arch, k in rb["keys"].items()}
    if pa != pb or models_a != models_b:
        sys.exit(f"error: {a} and {b} differ in more than precision (settings or trained models)")
    return ra, rb


def compare(a: Path, b: Path) -> pd.DataFrame:
    rows = []
    for rule in ("top_q", "frac_max"):
        da, _ = read_csv(a / f"direction_{rule}.csv", index_col=[0, 1, 2])
        db, _ = read_csv(b / f"direction_{rule}.csv", index_col=[0, 1, 2])
        if da is None or db is None:
            continue
        for arch in da.index.get_level_values(1).unique():
            differ = [
                f"{m} {short}"
                for (_, ar, m) in da.index
                if ar == arch
                for short in DIRECTION_VERDICTS
                if direction_verdict(da, (_, ar, m), short) != direction_verdict(db, (_, ar, m), short)
            ]
            n = int((da.index.get_level_values(1) == arch).sum()) * len(DIRECTION_VERDICTS)
            rows.append(
                {
                    "hull rule": rule,
                    "arch": arch,
                    "verdicts": n,
                    "agree": n - len(differ),
                    "differ": ", ".join(differ) or "none",
                }
            )
    return pd.DataFrame(rows).set_index(["hull rule", "arch"])


def main(a: str, b: str) -> None:
    ra, rb = same_models(Path(a), Path(b))
    table = compare(Path(a), Path(b))
    print(
        f"Verdicts (RC holds, RS GAD > Sup, RS GAD > Base, per method: {', '.join(METHOD_SHORT.values())}) "
        f"of {Path(a).name} (precision {ra['parameters']['precision']}) and {Path(b).name} "
        f"(precision {rb['parameters']['precision']}), the same trained models:\n"
    )
    print(to_markdown(table))
    print(f"\n<!-- gad key {rb['tables_key']} -->")


if __name__ == "__main__":
    main(*sys.argv[1:])
