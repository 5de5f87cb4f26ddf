"""What changed in a run's results since an earlier commit: the direction verdicts that flipped,
and how far the numbers of Table 1, Table 2 and the classifiers moved. The earlier files are
read from git, the current ones from figures/<run>/.
Usage: python tools/what_changed.py f40dc9b figures/synthetic-default [figures/cub-cpu ...]"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from gadlib.config import THRESHOLD_RULES
from gadlib.runfiles import key_comment, read_csv
from gadlib.tables import DIRECTION_VERDICTS, direction_verdict, to_markdown
from gadlib.training import model_names

ROOT = Path(__file__).resolve().parent.parent


def old_csv(rev: str, path: Path, **kw) -> pd.DataFrame | None:
    shown = subprocess.run(["git", "show", f"{rev}:{path.relative_to(ROOT)}"], cwd=ROOT, capture_output=True, text=True)
    return pd.read_csv(io.StringIO(shown.stdout), comment="#", **kw) if shown.returncode == 0 else None


def summary(rev: str, folder: Path) -> dict:
    folder = folder.resolve()
    row = {"run": folder.name}
    flipped = []
    for rule in THRESHOLD_RULES:
        new, _ = read_csv(folder / f"direction_{rule}.csv", index_col=[0, 1, 2])
        old = old_csv(rev, folder / f"direction_{rule}.csv", index_col=[0, 1, 2])
        if new is None or old is None:  # a rule's table on one side only is said, not skipped
            if (new is None) != (old is None):
                flipped.append(f"{rule} table only {'before' if new is None else 'now'}")
            continue
        for idx in new.index.intersection(old.index):
            for short in DIRECTION_VERDICTS:
                before, now = direction_verdict(old, idx, short), direction_verdict(new, idx, short)
                if before != now:
                    flipped.append(f"{rule} {idx[1]} {idx[2]} {short} {before}->{now}")
        # a row of one side only (an architecture or method added or dropped) is no "none flipped"
        flipped += [f"{rule} {idx[1]} {idx[2]} only now" for idx in new.index.difference(old.index)]
        flipped += [f"{rule} {idx[1]} {idx[2]} only before" for idx in old.index.difference(new.index)]
    row["verdicts flipped"] = "; ".join(flipped) or "none"
    t1n, _ = read_csv(folder / "table1_top_q.csv", index_col=[0, 1, 2])
    t1o = old_csv(rev, folder / "table1_top_q.csv", index_col=[0, 1, 2])
    t1fn, _ = read_csv(folder / "table1_frac_max.csv", index_col=[0, 1, 2])
    t1fo = old_csv(rev, folder / "table1_frac_max.csv", index_col=[0, 1, 2])
    n_images = int(t1n.groupby(level=[0, 1]).sum().iloc[0].max() // 2) or 1  # images per class and method
    row["Table 1 top_q: max count change"] = f"{int((t1n - t1o).abs().max().max())} of {n_images}"
    row["Table 1 frac_max: max count change"] = f"{int((t1fn - t1fo).abs().max().max())} of {n_images}"
    t2n, _ = read_csv(folder / "table2_top_q.csv", index_col=[0, 1, 2])
    t2o = old_csv(rev, folder / "table2_top_q.csv", index_col=[0, 1, 2])
    rel = ((t2n - t2o).abs() / t2o.abs()).stack()
    row["Table 2 top_q: median / max relative change"] = f"{rel.median():.0%} / {rel.max():.0%}"
    mn, _ = read_csv(folder / "models.csv")
    mo = old_csv(rev, folder / "models.csv")
    # by architecture, not by row: the two tables may list them in other orders, or other ones
    orig_n, orig_o = (m[model_names(m) == "original"].set_index("arch")["accuracy"] for m in (mn, mo))
    both = pd.concat({"before": orig_o, "now": orig_n}, axis=1)
    row["original accuracy, before -> now"] = ", ".join(
        f"{a} {'-' if pd.isna(o) else f'{o:.3f}'} -> {'-' if pd.isna(n) else f'{n:.3f}'}"
        for a, o, n in zip(both.index, both["before"], both["now"])
    )
    return row


def main(rev: str, *folders: str) -> None:
    rows = [summary(rev, Path(f)) for f in folders]
    keys = [json.loads((Path(f) / "RUN.json").read_text())["tables_key"] for f in folders]
    print(to_markdown(pd.DataFrame(rows).set_index("run").T.rename_axis(f"since {rev}")))
    print(f"\n{key_comment(*keys)}")


if __name__ == "__main__":
    main(*sys.argv[1:])
