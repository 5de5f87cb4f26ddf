"""The controls of several runs side by side (notebook 07's tables, read from figures/<run>/):
1. per metric and control, how many comparisons (methods, x hull rules for RS) hold / fail /
   are undecided;
2. the cascading-randomisation check: Spearman of the original's and GAD's maps with the
   trained ones once every layer is random, and of the matched-area baseline's;
3. mean RC of each region, and how much of GAD's shrinking retraining alone (alpha = 0) gives;
4. the cascade's first step (only the top layer random): Spearman with the trained map, where
   a method that ignores the model's top layer (Guided Backprop) stays near 1;
5. GAD against the matched-area baseline one step before every layer is random: at the last
   step (2) the family is one random network and GAD's randomised map is the baseline's, so
   there the difference lies in the trained maps alone; one step earlier the models still differ
   (3, 4 and 5 read runs/<run>/, so they need the run folders, not only figures/).
Usage: python tools/controls_summary.py figures/synthetic-default figures/cub-cpu ...
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from folder_names import labels
from run_tables import MADE, read, record, rules_of

from gadlib.config import METHOD_SHORT, runs_root
from gadlib.runfiles import key_comment, read_csv
from gadlib.sanity import STEPS, gad_against_base
from gadlib.stats import VERDICTS, count_text
from gadlib.tables import to_markdown


def controls_keys(folder: Path) -> dict[str, str]:
    """{architecture: controls key} from the run's RUN.json (it lists only controls of its
    settings): empty for a run without them (--no-controls, or a RUN.json from before them)."""
    return record(folder).get("controls_keys") or {}


def controls_arch(folder: Path) -> str | None:
    """The run's first architecture with controls, None for a run without them."""
    return next(iter(controls_keys(folder)), None)


def _run_dir(folder: Path) -> Path:
    """The run folder of the figures in `folder` (runs/<run>/, or under GAD_RUNS_DIR), by the run's
    name in its RUN.json: a sweep point's is <sweep>/<point>, not the figures folder's name alone."""
    return runs_root() / record(folder)["run"]


def verdicts(folder: Path, arch: str, label: str) -> pd.Series:
    """'holds / fails / undecided' counts per (metric, control) of the run's architecture `arch`."""
    t = read(folder / f"controls_verdicts_{arch}.csv", index_col=[0, 1, 2, 3])
    t = t.droplevel([0, 1])
    cells = {}
    for idx, row in t.iterrows():
        cells[idx] = count_text({k: int(v) for k, v in row.items() if k in VERDICTS})
    return pd.Series(cells, name=f"{label} ({arch})")


def sanity(folder: Path, arch: str, label: str) -> pd.Series:
    t = read(folder / f"sanity_{arch}.csv", index_col=0)
    return pd.Series(
        {
            METHOD_SHORT[m]: f"{r['Spearman orig']:.2f} / {r['Spearman GAD']:.2f} / {r['Spearman base']:.2f}"
            f" ({r['GAD']})"
            for m, r in t.iterrows()
        },
        name=f"{label} ({arch})",
    )


def shrinking(folder: Path, arch: str, label: str) -> pd.Series:
    """Mean RC (top-q hulls, over methods, classes and images) of GAD, GAD(alpha=0), the
    baseline and SmoothGrad, and the share of GAD's hull shrinking that alpha = 0 also gives."""
    rows, _ = read_csv(_run_dir(folder) / arch / "controls.csv")
    rc = rows[(rows["metric"] == "rc") & (rows["hull_rule"] == "top_q")].groupby("map")["value"].mean()
    share = (1 - rc["gad0"]) / (1 - rc["gad"])
    return pd.Series(
        {
            **{f"RC {k}": f"{rc[k]:.3f}" for k in ("gad", "gad0", "base", "smooth")},
            "share of GAD's shrinking that alpha = 0 gives": f"{share:.0%}",
        },
        name=f"{label} ({arch})",
    )


def cascade_rows(folder: Path, arch: str) -> pd.DataFrame:
    """The run's cascade rows, runs/<run>/<arch>/sanity.csv (`problem` checked their stamp)."""
    return read_csv(_run_dir(folder) / arch / "sanity.csv")[0]


def first_step(rows: pd.DataFrame, arch: str, label: str) -> pd.Series:
    """Mean Spearman of the original's, GAD's and the baseline's maps with the trained ones when
    only the top layer is random (the cascade's first step), per method."""
    mean = rows[rows["step"] == rows["step"].min()].groupby(["method", "map"])["spearman"].mean().unstack()
    return pd.Series(
        {METHOD_SHORT[m]: f"{r['orig']:.3f} / {r['gad']:.3f} / {r['base']:.3f}" for m, r in mean.iterrows()},
        name=f"{label} ({arch})",
    )


def before_last_step(folder: Path, rows: pd.DataFrame, arch: str, label: str) -> pd.Series:
    """GAD's minus the matched-area baseline's Spearman with the trained map, and its label, one
    cascade step before every layer is random (the interval as notebook 07's at the last step,
    with the run's own resamples and seed)."""
    p = record(folder)["parameters"]
    t = gad_against_base(rows, rows["step"].max() - 1, p["bootstrap"], p["seed"])
    return pd.Series(
        {METHOD_SHORT[m]: f"{r['interval']} ({r['label']})" for m, r in t.iterrows()}, name=f"{label} ({arch})"
    )


def problem(folder: Path, arch: str | None) -> str | None:
    """Why the summary cannot read `folder`'s run (its architecture with controls `arch`), in one
    line, else None."""
    run = _run_dir(folder)
    if arch is None:
        return f"{folder} has no controls (its RUN.json lists none): run it with notebook 07 (without --no-controls)"
    for table in (f"controls_verdicts_{arch}.csv", f"sanity_{arch}.csv"):
        read(folder / table)  # there, and of this record (else it exits with one line)
    lacking = next((f for f in (run / arch / "controls.csv", run / arch / "sanity.csv") if not f.is_file()), None)
    if lacking is not None:
        return (
            f"{lacking} is missing: the summary reads each run's figures/<run>/ and its run folder "
            f"runs/<run>/ (git-ignored, or under GAD_RUNS_DIR); {MADE}"
        )
    # A figures folder copied under another name (figures/cub-cpu-8f96e2d) keeps its run's name,
    # so its run folder may hold a later run's rows: the stamps must be those of this record.
    _, rows = read_csv(run / arch / "controls.csv", nrows=0)
    _, cascade = read_csv(run / arch / "sanity.csv", nrows=0)
    if rows is None or rows["key"] != controls_keys(folder)[arch]:
        return (
            f"{run / arch / 'controls.csv'} is not of the run in {folder / 'RUN.json'} (another key: the run "
            "made again since, or this a copy of an older one): the summary needs that run's own run folder"
        )
    if cascade is None:
        return f"{run / arch / 'sanity.csv'} has no stamp: run notebook 07 for that run again"

    def made_from(st: dict) -> dict:  # what both files of one run share
        return {"settings": st["settings"], **{name: st["inputs"].get(name) for name in ("models", "precision")}}

    if (other := next((k for k, v in made_from(rows).items() if made_from(cascade)[k] != v), None)) is not None:
        return f"{run / arch / 'sanity.csv'} is of other {other} than controls.csv beside it: run notebook 07 again"
    return None


def main(*folders: str) -> None:
    if not folders:
        sys.exit(__doc__)
    paths = [Path(f) for f in folders]
    names = dict(zip(paths, labels(folders)))  # each column's run
    keys = {}
    for p in paths:  # before any table: the summary is all or nothing
        keys[p] = controls_keys(p)  # (a missing RUN.json stops it in one line)
        if (why := problem(p, next(iter(keys[p]), None))) is not None:
            sys.exit(f"error: {why}")
    archs = [next(iter(keys[p])) for p in paths]
    top_q = {p: rules_of(p).get("top_q") for p in paths}  # the shrinking table reads the top-q hulls
    if (without := next((p for p, label in top_q.items() if label is None), None)) is not None:
        sys.exit(f"error: {without} has no top_q hulls (hull_rules), which the hull-shrinking table reads")
    one = len(set(top_q.values())) == 1
    hulls = f"{top_q[paths[0]].replace(' ', '-')} hulls" if one else "top-q hulls of each run"  # "top-50% hulls"
    table = pd.concat([verdicts(p, a, names[p]) for p, a in zip(paths, archs)], axis=1).fillna("- (no true object)")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["metric", "GAD vs"])
    print("GAD against each control: comparisons that hold / fail / are undecided (95% paired bootstrap interval)\n")
    print(to_markdown(table))
    print(
        "\nCascading randomisation, every layer random: Spearman with the trained map, original / GAD / "
        "matched-area baseline\n"
    )
    print(to_markdown(pd.concat([sanity(p, a, names[p]) for p, a in zip(paths, archs)], axis=1).rename_axis("method")))
    print(f"\nHull shrinking (mean RC, {hulls}; from runs/<run>/<arch>/controls.csv)\n")
    shrunk = pd.concat([shrinking(p, a, names[p]) for p, a in zip(paths, archs)], axis=1)
    print(to_markdown(shrunk.rename_axis(hulls)))
    print(
        "\nCascading randomisation, only the top layer random: Spearman with the trained map, original / GAD / "
        "matched-area baseline (from runs/<run>/<arch>/sanity.csv)\n"
    )
    order = list(METHOD_SHORT.values())
    cascades = {p: cascade_rows(p, a) for p, a in zip(paths, archs)}
    first = pd.concat([first_step(cascades[p], a, names[p]) for p, a in zip(paths, archs)], axis=1)
    print(to_markdown(first.reindex(order).rename_axis("method")))
    print(
        f"\nCascading randomisation, one step before every layer is random ({STEPS[-2][0]}: the models still differ; "
        "with every layer random the family is one network, and GAD's map is the baseline's): GAD's minus the "
        "matched-area baseline's Spearman with the trained map, per image (classes averaged), mean [95% paired "
        "bootstrap interval] and its label (from runs/<run>/<arch>/sanity.csv)\n"
    )
    earlier = pd.concat([before_last_step(p, cascades[p], a, names[p]) for p, a in zip(paths, archs)], axis=1)
    print(to_markdown(earlier.reindex(order).rename_axis("method")))
    print(f"\n{key_comment(*[k for p in paths for k in keys[p].values()])}")


if __name__ == "__main__":
    main(*sys.argv[1:])
