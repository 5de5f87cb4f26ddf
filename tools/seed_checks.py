"""Does one training seed decide the verdict? Each seed sweep (`make sweep SWEEP=seeds ...`, grid
sweeps/seeds.yaml) runs the whole chain once per seed, and the seed draws everything a run draws:
the data split (the synthetic images themselves), the evaluation images, the original classifier
and its supports. This counts, from the files notebook 06 wrote at each point, the verdicts the
README rests on, per (method, class) cell, holds / fails / undecided:
- the paper's claims: RC < 1 for most images, and GAD's RS above its supplementary region's;
- GAD against the matched-area baseline: on RS (as the direction tables) and on the logit change;
- GAD against the hull-matched baseline, where RS and the logit change agree ("both");
- how close GAD and the hull-matched baseline are shown to be (reviewer_checks' section 5).
Table 1 pools every seed of a sweep, then every sweep (sweep "all"); table 2 has one row per
seed, with the original's test accuracy. Each file's stamp must carry its point's RUN.json key,
every point must be done and made under the code's current definitions (`record.definitions`),
and every point's seed must differ: otherwise the tool stops in one line.
Usage: python tools/seed_checks.py figures/seeds figures/seeds-birds ...
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
from direction_summary import rules_of
from reviewer_checks import closeness, read

from gadlib.stats import count_text
from gadlib.sweep import other_code, read_points
from gadlib.tables import class_cells, to_markdown

# (file, column) -> the label of its count in the tables below
VERDICTS = {
    ("direction", "RC<1 for most"): "RC<1 for most",
    ("direction", "RS GAD vs Sup"): "RS GAD vs Sup",
    ("baseline_check", "RS GAD vs Base"): "RS GAD vs Base",
    ("baseline_check", "logit change GAD vs Base"): "logit change GAD vs Base",
    ("baseline_check", "GAD vs Base(hull), both"): "GAD vs Base(hull), both",
}
MARGIN = "Base(hull) within"


def points(sweep: Path) -> list[tuple[int, Path]]:
    """(seed, folder) of every point of the sweep, after checking that each is done, of the
    current code, and of its own seed."""
    table = read_points(sweep / "points.csv")
    if table.empty:
        sys.exit(f"error: {sweep}/points.csv lists no point: run the seed sweep first (its command is in the README)")
    found = []
    for _, row in table.iterrows():
        folder = sweep / row["point"]
        params = json.loads(row["params"])
        if set(params) != {"seed"}:
            sys.exit(f"error: {sweep} sweeps {', '.join(sorted(params))}, not the seed alone: give a seed sweep")
        if row["status"] != "done":
            sys.exit(f"error: point {folder} is {row['status']}, not done: run its sweep again")
        if (why := other_code(folder / "RUN.json")) is not None:
            sys.exit(f"error: point {folder} was made by other code ({why}): run its sweep again")
        found.append((int(params["seed"]), folder))
    seeds = [seed for seed, _ in found]
    if len(set(seeds)) != len(seeds):
        sys.exit(f"error: {sweep} has two points of one seed: {sorted(seeds)}")
    return sorted(found)


def cells(part: pd.DataFrame, column: str) -> Counter:
    return Counter(v for joined in part[column] for v in class_cells(joined))


def seed_rows(sweep: Path) -> dict:
    """Per (sweep, seed, architecture, hull rule): the cells' verdict counts, their margins and
    hull overlaps, and the original's test accuracy."""
    rows = {}
    for seed, folder in points(sweep):
        models = read(folder / "models.csv")
        accuracy = models[(models["alpha_c1"] == 0) & (models["alpha_c2"] == 0)].set_index("arch")["accuracy"]
        for rule, label in rules_of(folder).items():
            tables = {name: read(folder / f"{name}_{rule}.csv") for name in ("direction", "baseline_check")}
            for arch in tables["baseline_check"]["arch"].unique():
                parts = {name: t[t["arch"] == arch] for name, t in tables.items()}
                rows[(sweep.name, seed, arch, label)] = {
                    "test accuracy": accuracy[arch],
                    "counts": {lab: cells(parts[name], col) for (name, col), lab in VERDICTS.items()},
                    "margins": list(parts["baseline_check"][MARGIN]),
                    "overlaps": list(parts["baseline_check"]["GAD / Base(hull) hull IoU"]),
                }
    return rows


def per_seed(rows: dict) -> dict:
    return {
        key: {
            "test accuracy": row["test accuracy"],
            **{lab: count_text(n) for lab, n in row["counts"].items()},
            **{f"margin {k}": v for k, v in closeness(pd.Series(row["margins"])).items() if k in ("median", "largest")},
        }
        for key, row in rows.items()
    }


def pooled(rows: dict) -> dict:
    """Per (sweep, architecture, hull rule), every seed together; then every sweep together
    (sweep "all")."""
    groups = {}
    for (sweep, _, arch, label), row in rows.items():
        for key in ((sweep, arch, label), ("all", arch, label)):
            groups.setdefault(key, []).append(row)
    table = {}
    for key, members in groups.items():
        labels = members[0]["counts"]
        margins = [m for row in members for m in row["margins"]]
        overlaps = [o for row in members for o in row["overlaps"]]
        table[key] = {
            "seeds": len(members),
            **{lab: count_text(sum((row["counts"][lab] for row in members), Counter())) for lab in labels},
            **{f"margin {k}": v for k, v in closeness(pd.Series(margins)).items()},
            "GAD / Base(hull) IoU": sum(overlaps) / len(overlaps),
        }
    return dict(sorted(table.items(), key=lambda item: item[0][0] == "all"))  # "all" last, else as read


def frame(rows: dict, names: list[str]) -> pd.DataFrame:
    t = pd.DataFrame.from_dict(rows, orient="index")
    t.index = pd.MultiIndex.from_tuples(t.index, names=names)
    return t


def main(*sweeps: str) -> None:
    if not sweeps:
        sys.exit(__doc__)
    rows = {}
    for sweep in map(Path, sweeps):  # everything read before anything is printed
        rows.update(seed_rows(sweep))
    print(
        "1. Every seed of each sweep pooled: per (method, class) cell, holds / fails / undecided, for the "
        "paper's claims (RC < 1 for most images; GAD's RS above its supplementary region's), GAD against the "
        "matched-area baseline on RS and on the logit change, and GAD against the hull-matched baseline where "
        "RS and the logit change agree; then the equivalence margins of the cells (reviewer_checks' section "
        "5: median, largest, how many within 5% and 10%) and the two hulls' mean IoU; the rows of sweep 'all' "
        "pool every sweep\n"
    )
    print(to_markdown(frame(pooled(rows), ["sweep", "arch", "hulls"])) + "\n")
    print("2. Seed by seed: the original's test accuracy, the same counts, and the margins' median and largest\n")
    print(to_markdown(frame(per_seed(rows), ["sweep", "seed", "arch", "hulls"])))


if __name__ == "__main__":
    main(*sys.argv[1:])
