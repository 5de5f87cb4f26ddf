"""Does one training seed decide the verdict? Each seed sweep (`make sweep SWEEP=seeds ...`, grid
sweeps/seeds.yaml) runs the whole chain once per seed, and the seed draws everything a run draws:
the data split (the synthetic images themselves), the evaluation images, the original classifier
and its supports. This counts, from the files notebook 06 wrote at each point, the verdicts the
README rests on, per (method, class) cell, holds / fails / undecided:
- the paper's claims: RC < 1 for most images, and GAD's RS above its supplementary region's;
- GAD against the matched-area baseline: on RS (as the direction tables) and on the logit change;
- GAD against the hull-matched baseline, where RS and the logit change agree ("both");
- how close GAD and the hull-matched baseline are shown to be (reviewer_checks' section 5).
Table 1 pools every seed of a sweep, then every sweep (sweep "all"), and names the pooled rows
whose seeds ran on more than one kind of machine; table 2 has one row per seed, with its machine,
the original's test accuracy and its supports' lowest Spearman; table 3, for sweeps run with
--controls, sums notebook 07's verdicts of GAD against each control over the seeds. Each file's
stamp must carry its point's RUN.json key, every point must be done (its run folder may be
elsewhere: this reads only its figures) and made under the code's current definitions
(`record.definitions`), and every point's seed must differ, also across the sweeps given where
their other settings are the same (the rows "all" would count it twice): otherwise the tool
stops in one line.
A sweep of other settings too is read where `--where NAME=VALUE` (repeatable) picks one value of
each: the size sweep's 224-px point (seed 0, the default) pools with a seed sweep at 224 px. A
point that does not sweep the seed is of the seed its RUN.json gives.
Examples (make seed-checks runs both): python tools/seed_checks.py figures/seeds figures/seeds-birds;
python tools/seed_checks.py --where image_size=224 figures/size-birds figures/size-birds-seeds
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
from controls_summary import controls_keys
from folder_names import labels
from reviewer_checks import baseline_table, cell_counter, closeness, frame
from run_tables import read, rules_of

from gadlib.stats import VERDICTS as VERDICT_WORDS
from gadlib.stats import count_text
from gadlib.sweep import NOT_HERE, listed_record, read_points
from gadlib.tables import sup_cells, to_markdown
from gadlib.training import ORDER_KEPT, lowest_spearman, model_names

SUP = "RS GAD vs Sup"
# (file, column) -> the label of its count in the tables below
VERDICTS = {
    ("direction", "RC<1 for most"): "RC<1 for most",
    ("direction", SUP): SUP,
    ("baseline_check", "RS GAD vs Base"): "RS GAD vs Base",
    ("baseline_check", "logit change GAD vs Base"): "logit change GAD vs Base",
    ("baseline_check", "GAD vs Base(hull), both"): "GAD vs Base(hull), both",
}
MARGIN = "Base(hull) within"
OVERLAP = "GAD / Base(hull) hull IoU"
TIES = ("RC = 1", "RC > 1")  # baseline_check's shares of the image-target pairs: where RC < 1 fails
AGAIN = "run its sweep again (its command is in the README)"


def where(pairs: list[str]) -> dict:
    """`NAME=VALUE` pairs as a sweep's points.csv writes a point's settings (224 as a number)."""
    picked = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            sys.exit(f"error: --where {pair!r} is not NAME=VALUE: give one setting and its value, image_size=224 say")
        try:
            picked[name] = json.loads(value)
        except json.JSONDecodeError:
            picked[name] = value  # a word, unquoted
    return picked


def points(sweep: Path, picked: dict | None = None) -> list[tuple[int, Path]]:
    """(seed, folder) of every point of the sweep whose settings include `picked`, after checking
    that each is done, of the current code, and of its own seed, as its RUN.json says too, and that
    the seed is the only setting that takes more than one value among them."""
    picked = picked or {}
    index = sweep / "points.csv"
    if not index.is_file():
        sys.exit(f"error: {index} does not exist: run the seed sweep first (its command is in the README)")
    table = read_points(index)
    if table.empty:
        sys.exit(f"error: {index} lists no point: run the seed sweep first (its command is in the README)")
    rows = [(row, json.loads(row["params"])) for _, row in table.iterrows()]
    swept = sorted({k for _, params in rows for k in params})
    if absent := [k for k in picked if k not in swept]:
        sys.exit(f"error: {sweep} does not sweep {', '.join(absent)} (it sweeps {', '.join(swept)}): drop that --where")
    rows = [(row, params) for row, params in rows if all(params.get(k) == v for k, v in picked.items())]
    if not rows:
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in picked.items())
        sys.exit(f"error: {sweep} has no point of {shown}: give values it swept (its points.csv lists them)")
    values = {}
    for _, params in rows:
        for k, v in params.items():
            values.setdefault(k, set()).add(json.dumps(v, sort_keys=True))
    varied = sorted(k for k, v in values.items() if k != "seed" and len(v) > 1)  # one value is a setting
    if varied:
        sys.exit(
            f"error: {sweep} sweeps {', '.join(varied)}, not the seed alone: give a seed sweep, "
            f"or pick one value of each with --where {varied[0]}=VALUE"
        )
    found = []
    for row, params in rows:
        folder = sweep / row["point"]
        # a finished point whose run folder is not here (the sweep ran a smaller grid on a fresh
        # clone) left whole figures, and this reads nothing else: the checks below still apply
        if row["status"] not in ("done", NOT_HERE):
            sys.exit(f"error: point {folder} is {row['status']}, not done: {AGAIN}")
        if not (folder / "RUN.json").is_file():
            sys.exit(f"error: point {folder} has no RUN.json (its folder is missing or incomplete): {AGAIN}")
        record, why = listed_record(index, row["point"], row["key"])
        if why is not None:
            sys.exit(f"error: {why}: {AGAIN}")
        seed = record["parameters"]["seed"]
        if seed != params.get("seed", seed):
            sys.exit(f"error: {folder}/RUN.json is of seed {seed}, not the point's: {AGAIN}")
        found.append((int(seed), folder))
    seeds = [seed for seed, _ in found]
    if len(set(seeds)) != len(seeds):
        sys.exit(f"error: {sweep} has two points of one seed: {sorted(seeds)}")
    return sorted(found)


def seed_rows(sweep: Path, found: list[tuple[int, Path]], label: str | None = None) -> dict:
    """Per (sweep, seed, architecture, hull rule), the sweep named `label` (its folder's name if
    None): the cells' verdict counts, their margins and hull overlaps, and the original's test
    accuracy."""
    rows = {}
    for seed, folder in found:
        machine = json.loads((folder / "RUN.json").read_text())["device"].removeprefix("cpu: ")
        models = read(folder / "models.csv")
        original = models[model_names(models) == "original"].set_index("arch")["accuracy"]
        lowest = lowest_spearman(models).groupby(models["arch"]).min()  # over the supports (the original's is NaN)
        for rule, hulls in rules_of(folder).items():
            tables = {
                "direction": read(folder / f"direction_{rule}.csv"),
                "baseline_check": baseline_table(folder, rule),
            }
            archs = {name: list(t["arch"].unique()) for name, t in tables.items()}
            if archs["direction"] != archs["baseline_check"] or not set(archs["direction"]) <= set(original.index):
                sys.exit(
                    f"error: {folder}'s direction, baseline_check and models tables are of other architectures: {AGAIN}"
                )
            for arch in archs["direction"]:
                parts = {name: t[t["arch"] == arch] for name, t in tables.items()}
                rows[(label or sweep.name, seed, arch, hulls)] = {
                    "machine": machine,
                    "test accuracy": original[arch],
                    "lowest Spearman": lowest[arch],
                    "counts": {
                        lab: sup_counter(parts) if col == SUP else cell_counter(parts[name][col])
                        for (name, col), lab in VERDICTS.items()
                    },
                    "margins": list(parts["baseline_check"][MARGIN]),
                    "overlaps": list(parts["baseline_check"][OVERLAP]),
                    "ties": parts["baseline_check"][list(TIES)].to_numpy().tolist(),  # one pair per method
                }
    return rows


def sup_counter(parts: dict[str, pd.DataFrame]) -> Counter:
    """The "RS GAD vs Sup" cells of one architecture's direction and baseline_check rows, a class
    on too few images read so (`tables.sup_cells`: earlier points gave a verdict on 1 to 5)."""
    images = parts["baseline_check"].set_index("method")["images with Sup"]
    verdicts = parts["direction"].set_index("method")[SUP]
    return Counter(c for m, joined in verdicts.items() for c in sup_cells(joined, images[m]))


def control_counts(sweep: Path, found: list[tuple[int, Path]], label: str | None = None) -> dict[str, pd.Series]:
    """Notebook 07's verdicts of GAD against each control, per (metric, control), summed over the
    seeds: one column per architecture with controls; none for a sweep run without --controls."""
    with_controls = [(folder, controls_keys(folder)) for _, folder in found]
    if not any(keys for _, keys in with_controls):
        return {}
    totals = {}
    for folder, keys in with_controls:
        if not keys:
            sys.exit(
                f"error: point {folder} has no controls, others of its sweep have: run its sweep again with --controls"
            )
        for arch in keys:
            t = read(folder / f"controls_verdicts_{arch}.csv", index_col=[0, 1, 2, 3]).droplevel([0, 1])
            for idx, row in t.iterrows():
                totals.setdefault(arch, {}).setdefault(idx, Counter()).update(
                    {word: int(n) for word, n in row.items() if word in VERDICT_WORDS}
                )
    return {
        f"{label or sweep.name} ({arch})": pd.Series({idx: count_text(n) for idx, n in found.items()})
        for arch, found in totals.items()
    }


def per_seed(rows: dict) -> dict:
    return {
        key: {
            "machine": row["machine"],
            "test accuracy": row["test accuracy"],
            "supports' lowest Spearman": row["lowest Spearman"],
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
        ties = pd.DataFrame([t for row in members for t in row["ties"]], columns=list(TIES)).mean()
        table[key] = {
            "seeds": len(members),
            **{lab: count_text(sum((row["counts"][lab] for row in members), Counter())) for lab in labels},
            **{f"margin {k}": v for k, v in closeness(pd.Series(margins)).items()},
            "GAD / Base(hull) IoU": pd.Series(overlaps, dtype=float).mean(),
            " / ".join(TIES): f"{ties[TIES[0]]:.0%} / {ties[TIES[1]]:.1%}",
        }
    return dict(sorted(table.items(), key=lambda item: item[0][0] == "all"))  # "all" last, else as read


def mixed_machines(rows: dict) -> list[str]:
    """Per sweep whose seeds ran on more than one kind of machine, then per architecture's rows
    "all" (every sweep pooled) whose sweeps did: which seeds ran on which (a machine's kind alone
    moves verdicts, so such pooled rows mix two causes)."""
    where = {}  # (sweep, None) or ("all", arch): machine: sweep: seeds
    for (sweep, seed, arch, _), row in rows.items():
        for pool in ((sweep, None), ("all", arch)):
            where.setdefault(pool, {}).setdefault(row["machine"], {}).setdefault(sweep, set()).add(seed)

    def seeds(found: set) -> str:
        return f"seed{'s' * (len(found) > 1)} {', '.join(map(str, sorted(found)))}"

    own, pooled = [], []  # a sweep's own rows as read, then the rows "all"
    for (name, arch), machines in where.items():
        if len(machines) < 2:
            continue
        if arch is None:  # a sweep's own rows: its seeds
            own.append(f"{name}: " + "; ".join(f"{m}, {seeds(*by.values())}" for m, by in machines.items()))
        elif len({w for by in machines.values() for w in by}) > 1:  # "all" of one sweep is that sweep
            pooled.append(
                f"{name}, {arch}: "
                + "; ".join(
                    f"{m}, " + ", ".join(f"{w} ({seeds(s)})" for w, s in by.items()) for m, by in machines.items()
                )
            )
    return own + pooled


# Where and under which name a point ran: two points apart only in these are one run made twice
WHERE = ("run_name", "device", "data_dir")


def repeated_run(found: list[tuple[int, Path]]) -> tuple[int, str, Path, Path] | None:
    """The first of `found` (points of one or more sweeps, as `points` gives them) whose seed and
    architecture are already among them with every other setting the same (a data folder by its
    name, wherever it lies): (seed, architecture, the earlier point, this point), else None.
    Pooled, such a run's cells would count twice."""
    seen = {}
    for seed, folder in found:
        record = json.loads((folder / "RUN.json").read_text())
        p = record["parameters"]
        data = Path(p["data_dir"]).name if p.get("data_dir") else None
        same = json.dumps({k: v for k, v in p.items() if k not in WHERE}, sort_keys=True)
        for arch in record["archs"]:
            if (key := (arch, data, same)) in seen:
                return seed, arch, seen[key], folder
            seen[key] = folder
    return None


def main(*args: str) -> None:
    ap = argparse.ArgumentParser(
        prog="python tools/seed_checks.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("sweeps", nargs="+", help="figures/<sweep> folders")
    ap.add_argument("--where", action="append", default=[], metavar="NAME=VALUE", help="read the points of this value")
    parsed = ap.parse_intermixed_args(args)  # --where before or after the sweeps
    sweeps, picked = parsed.sweeps, where(parsed.where)
    names = labels(sweeps, "sweeps")
    if "all" in names:  # the rows that pool every sweep are "all"'s
        sys.exit(f"error: a sweep named 'all' ({sweeps[names.index('all')]}) would share the pooled rows: rename it")
    rows, controls, every = {}, {}, []
    for sweep, label in zip(map(Path, sweeps), names):  # everything read before anything is printed
        found = points(sweep, picked)
        every += found
        rows.update(seed_rows(sweep, found, label))
        controls.update(control_counts(sweep, found, label))
    if (twice := repeated_run(every)) is not None:  # the rows "all" pool the sweeps
        seed, arch, first, again = twice
        sys.exit(
            f"error: seed {seed} of {arch} is in two sweeps with the same settings ({first}, {again}): the pooled "
            "rows would count its cells twice; give one of them"
        )
    print(
        "1. Every seed of each sweep pooled: per (method, class) cell, holds / fails / undecided (then ties, cells "
        "on too few images, a class's 'RS GAD vs Sup' read from its 'images with Sup', and undefined ones), for the "
        "paper's claims (RC < 1 for most images; GAD's RS above its supplementary region's), GAD against the "
        "matched-area baseline on RS and on the logit change, and GAD against the hull-matched baseline where "
        "RS and the logit change agree; then the equivalence margins of the cells (reviewer_checks' section "
        "5: median, largest, how many within 5% and 10%), the two hulls' mean IoU, and the shares of "
        "image-target pairs whose GAD hull is the original's (RC = 1) or larger (RC > 1), the only ways RC < 1 "
        "can fail (the mean of the seeds' shares per method); the rows of sweep 'all' pool every sweep of one "
        "architecture\n"
    )
    print(to_markdown(frame(pooled(rows), ["sweep", "arch", "hulls"])) + "\n")
    if mixed := mixed_machines(rows):
        print("Pooled rows whose seeds ran on more than one kind of machine (table 2 gives each seed's machine):\n")
        print("".join(f"- {line}\n" for line in mixed))
    print(
        "2. Seed by seed: the machine, the original's test accuracy, the lowest Spearman of a support's logit with "
        f"the original's (below {ORDER_KEPT} the run warns that the supports lose the original's order), the same "
        "counts, and the margins' median and largest\n"
    )
    print(to_markdown(frame(per_seed(rows), ["sweep", "seed", "arch", "hulls"])))
    if controls:
        print(
            "\n3. Notebook 07's controls, every seed of each sweep pooled: GAD against each control, comparisons "
            "(methods, x hull rules for RS) that hold / fail / are undecided, summed over the seeds ('-': the "
            "metric needs the true object, which only the synthetic data have)\n"
        )
        table = pd.concat(controls, axis=1).fillna("-")
        table.index = pd.MultiIndex.from_tuples(table.index, names=["metric", "GAD vs"])
        print(to_markdown(table))


if __name__ == "__main__":
    main(*sys.argv[1:])
