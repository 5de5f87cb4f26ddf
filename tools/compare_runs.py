"""Do the paper's directions survive a change of precision, or of machine? Compares the direction
verdicts of two runs that differ only in `precision` (the attributions of the same trained
models), only in `train_precision` (models trained in fp32 and in bf16), or in no setting at all
(the same command on another machine, or with another thread count, code or version, whose
floating point trains other models), and prints a
Markdown report whose table sums them up per hull rule and architecture; where the models were
trained apart, each model's test accuracy in both runs too.
Usage: python tools/compare_runs.py figures/synthetic-fp32 figures/synthetic-bf16"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
from folder_names import labels
from run_tables import read, rules_of

from gadlib.config import METHOD_SHORT, THRESHOLD_RULES
from gadlib.runfiles import LATER_DEFAULTS, key_comment
from gadlib.tables import DIRECTION_VERDICTS, direction_verdict, opposite_verdicts, to_markdown
from gadlib.training import model_names

PRECISION_FIELDS = ("precision", "train_precision")
# What else a run's record says about how it ran; with the same settings, these are what differ.
RUN_FIELDS = ("device", "commit", "versions", "threads", "precision")


def what_differs(a: Path, b: Path) -> tuple[dict, dict, str]:
    """The two runs' parameters and what sets them apart: the one precision setting they differ
    in, or "device" where no setting differs but the machine or the code does, after checking
    that nothing else differs (and, for `precision`, that the trained models are the same)."""
    ra, rb = (json.loads((f / "RUN.json").read_text()) for f in (a, b))
    # records made before a setting existed have its later default; "_run" is how each run ran
    pa, pb = (
        {**LATER_DEFAULTS, **r["parameters"], "_run": {k: r.get(k, "unknown") for k in RUN_FIELDS}} for r in (ra, rb)
    )
    differ = [k for k in PRECISION_FIELDS if pa.get(k) != pb.get(k)]
    rest_a, rest_b = (
        {k: v for k, v in p.items() if k not in (*PRECISION_FIELDS, "run_name", "_run")} for p in (pa, pb)
    )
    models_a = {arch: k["models"] for arch, k in ra["keys"].items()}
    models_b = {arch: k["models"] for arch, k in rb["keys"].items()}
    if rest_a == rest_b and not differ:
        if pa["_run"] == pb["_run"]:
            sys.exit(f"error: {a} and {b} differ in nothing: no setting, machine, code or version")
        return {**pa, "device": pa["_run"]["device"]}, {**pb, "device": pb["_run"]["device"]}, "device"
    if rest_a != rest_b or len(differ) != 1 or (differ == ["precision"] and models_a != models_b):
        sys.exit(f"error: {a} and {b} must differ in precision or in train_precision alone, or in no setting")
    return pa, pb, differ[0]


def accuracies(a: Path, b: Path, labels: tuple[str, str]) -> pd.DataFrame:
    """Each model's test accuracy in both runs (models.csv beside the tables)."""
    frames = []
    for run, label in zip((a, b), labels):
        df = read(run / "models.csv")
        frames.append(df.assign(model=model_names(df), run=label)[["arch", "model", "run", "accuracy"]])
    table = pd.concat(frames).pivot_table(index=["arch", "model"], columns="run", values="accuracy", sort=False)
    return table.dropna()  # the architectures both runs trained


def shared_archs(da: pd.DataFrame, db: pd.DataFrame) -> list[str]:
    """The architectures both direction tables have, in the first's order (a sweep point of one
    architecture against a run of two compares that one)."""
    archs_b = set(db.index.get_level_values(1))
    return [arch for arch in da.index.get_level_values(1).unique() if arch in archs_b]


def compare(a: Path, b: Path) -> pd.DataFrame:
    """One row per hull rule and architecture both runs have; `attrs["only"]` names, per run, the
    architectures the other lacks."""
    # a sweep point against an older copy of itself are both `seed-0`: one label would pool them
    names = dict(zip((a, b), labels([a, b])))
    rows, only = [], {name: set() for name in names.values()}
    for rule in THRESHOLD_RULES:
        # a run without this hull rule has no table of it; one with it must have it, stamp-checked
        da, db = (
            read(run / f"direction_{rule}.csv", index_col=[0, 1, 2]) if rule in rules_of(run) else None
            for run in (a, b)
        )
        if da is None or db is None:
            continue
        for run, mine, theirs in ((a, da, db), (b, db, da)):
            only[names[run]] |= set(mine.index.get_level_values(1)) - set(theirs.index.get_level_values(1))
        for arch in shared_archs(da, db):
            datasets = da.index.get_level_values(0).unique()
            pairs = {
                (f"{d} " if len(datasets) > 1 else "") + f"{m} {short}": (
                    direction_verdict(da, (d, ar, m), short),
                    direction_verdict(db, (d, ar, m), short),
                )
                for (d, ar, m) in da.index
                if ar == arch
                for short in DIRECTION_VERDICTS
            }
            differ = [name for name, (va, vb) in pairs.items() if va != vb]
            # Tables made before the paired verdicts say True/False on means: no interval to oppose.
            paired = all(new in t.columns for t in (da, db) for new, _ in DIRECTION_VERDICTS.values())
            rows.append(
                {
                    "hull rule": rule,
                    "arch": arch,
                    "verdicts": len(pairs),
                    "agree": len(pairs) - len(differ),
                    "opposite": sum(opposite_verdicts(*pairs[name]) for name in differ) if paired else "n/a",
                    "differ": ", ".join(differ) or "none",
                }
            )
    if not rows:
        sys.exit(f"error: {a} and {b} have no architecture in common: nothing to compare")
    table = pd.DataFrame(rows).set_index(["hull rule", "arch"])
    table.attrs["only"] = only
    return table


def _also_differ(pa: dict, pb: dict, field: str) -> list[str]:
    """How else the two runs ran apart (machine, code, versions, what auto precision chose),
    each as 'name a / b'."""
    out = []
    for name in RUN_FIELDS:
        if name == field:
            continue
        va, vb = pa["_run"][name], pb["_run"][name]
        if name == "commit":
            va, vb = str(va)[:7], str(vb)[:7]
        if name == "precision" and isinstance(va, dict) and isinstance(vb, dict):  # what "auto" chose
            moved = [
                f"{arch} {m} {va[arch][m]} / {vb[arch][m]}"
                for arch in va
                for m in va[arch]
                if arch in vb and va[arch][m] != vb[arch].get(m)
            ]
            out += ["attribution precision " + ", ".join(moved)] if moved else []
        elif va != vb:
            out.append(f"{name} {va} / {vb}")
    return out


def main(a: str, b: str) -> None:
    for folder in (Path(a), Path(b)):
        if not (folder / "RUN.json").is_file():
            sys.exit(f"error: {folder / 'RUN.json'} does not exist: give two runs' figures folders (figures/<run>)")
    pa, pb, field = what_differs(Path(a), Path(b))
    name_a, name_b = labels([a, b])
    table = compare(Path(a), Path(b))
    accuracy = None  # read before anything is printed: a refused file leaves no half-written report
    if field != "precision":
        columns = (f"train {pa[field]}", f"train {pb[field]}") if field == "train_precision" else (name_a, name_b)
        accuracy = accuracies(Path(a), Path(b), columns)
    models = {
        "precision": "the same trained models",
        "train_precision": "models trained in each precision",
        "device": "the same settings, models trained in each run",
    }[field]
    if pa[field] == pb[field]:  # the same machine: what sets the runs apart is in the list after
        runs = f"{name_a} and {name_b} (both {field} {pa[field]})"
    else:
        runs = f"{name_a} ({field} {pa[field]}) and {name_b} ({field} {pb[field]})"
    print(
        f"Verdicts (RC holds, RS GAD > Sup, RS GAD > Base, per method: {', '.join(METHOD_SHORT.values())}) "
        f"of {runs}, {models}" + "".join("; " + part for part in _also_differ(pa, pb, field)) + ":\n"
    )
    left_out = "; ".join(f"only in {name}: {', '.join(sorted(x))}" for name, x in table.attrs["only"].items() if x)
    if left_out:
        print(f"Compared the architectures both ran ({left_out}).\n")
    print(to_markdown(table))
    print('\n"opposite": verdicts that hold in one run and fail in the other for a class; the other differences')
    print('are between a verdict and "undecided", or between one verdict for both classes and one per class;')
    print("n/a: a table made before the paired verdicts, whose True/False compares means and has no interval.")
    if accuracy is not None:
        print("\nTest accuracy of each model:\n")
        print(to_markdown(accuracy, floatfmt=".3f"))
    print(f"\n{key_comment(json.loads((Path(b) / 'RUN.json').read_text())['tables_key'])}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python tools/compare_runs.py figures/<run a> figures/<run b>")
    main(*sys.argv[1:])
