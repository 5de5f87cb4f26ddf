"""One picture of the verdicts the README rests on: per dataset, image size and architecture, the
share of the seed sweeps' (seed, method, class) cells where each comparison holds (GAD's side
ahead, shown), is undecided or fails, under each hull rule. The counts are tools/seed_checks.py's
(the same reading of each point's files and the same refusals); this only pools the sweeps of one
bar and draws them. The table drawn is written beside the picture (`.csv`), so the picture's
numbers can be checked and compared with a fresh run.

Each argument is one bar's sweeps, SWEEP[+SWEEP...][@NAME=VALUE[,NAME=VALUE...]]: the sweeps'
points pooled, at one value of each other setting they sweep (seed_checks' --where); an
architecture of the sweeps is a bar of its own. Each bar is labelled from its points' RUN.json
(dataset, image size, architecture), each setting that is not its profile's (train_epochs=24, say),
its number of seeds and the range of its originals' test accuracy (a bar of models at chance reads
apart); a bar whose points differ in any setting but the seed (and where they ran), or share a
seed, is refused in one line. `make seed-checks` draws the committed one:

  python tools/verdict_figure.py --out figures/verdicts.png figures/seeds figures/seeds-birds \\
      figures/size-birds+figures/size-birds-seeds@image_size=224
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
from folder_names import labels
from seed_checks import WHERE, points, repeated_run, seed_rows, where

from gadlib import figures
from gadlib.config import RunConfig
from gadlib.runfiles import atomic_write
from gadlib.stats import FAILS, HOLDS, NO_DIFFERENCE, TOO_FEW, UNDECIDED, UNDEFINED, min_pairs

PACKS = {"cub_warbler_sparrow": "birds", "catsdogs": "cats vs dogs"}  # ../shared/data's packs, by their names here
ARCH_NAMES = {"resnet18": "ResNet18", "vgg16": "VGG16"}
# a tie (every image equal), a cell on too few images or with nothing scored is neither side's:
# each drawn apart, pale, under its own name
SHOWN = {
    HOLDS: "holds",
    UNDECIDED: "undecided",
    FAILS: "fails",
    NO_DIFFERENCE: "no difference",
    TOO_FEW: "too few images",
    UNDEFINED: "undefined",
}


def bar_spec(text: str) -> tuple[list[Path], dict]:
    """SWEEP[+SWEEP...][@NAME=VALUE[,...]] -> (sweep folders, the settings picked)."""
    sweeps, _, picked = text.partition("@")
    return [Path(s) for s in sweeps.split("+") if s], where([p for p in picked.split(",") if p])


def dataset_of(record: dict) -> str:
    p = record["parameters"]
    if p["dataset"] != "folder":
        return p["dataset"]
    name = Path(p["data_dir"]).name
    return PACKS.get(name, name)


# A bar's points differ in these by design (the seed) or by where and as what they ran; every
# other setting of their RUN.json must be the same, so that a bar pools one protocol's seeds.
APART = {"seed", *WHERE}


def setting_text(record: dict) -> str:
    """The bar's name for a point's settings: its dataset, image size, and NAME=VALUE for each
    setting that is not its profile's (train_epochs=24, say)."""
    p = record["parameters"]
    defaults = dataclasses.asdict(RunConfig.build(profile=p["profile"]))
    other = [
        f"{k}={json.dumps(v)}"
        for k, v in sorted(p.items())
        if k not in APART | {"profile", "dataset", "image_size"} and k in defaults and v != defaults[k]
    ]
    return ", ".join([dataset_of(record), f"{p['image_size']} px", *other])


def bar_rows(text: str) -> tuple[str, dict]:
    """One bar's dataset, size and other settings, and seed_checks' rows of its points (keyed as
    seed_checks keys them, the sweep's label first)."""
    sweeps, picked = bar_spec(text)
    if not sweeps:
        sys.exit(f"error: bar {text!r} names no sweep: give SWEEP[+SWEEP...][@NAME=VALUE]")
    rows, every, settings = {}, [], {}
    for sweep, label in zip(sweeps, labels([str(s) for s in sweeps], "sweeps")):
        found = points(sweep, picked)
        every += found
        for _, folder in found:
            record = json.loads((folder / "RUN.json").read_text())
            kept = {k: v for k, v in record["parameters"].items() if k not in APART}
            settings[json.dumps(kept, sort_keys=True)] = (setting_text(record), kept)
        rows.update(seed_rows(sweep, found, label))
    if (twice := repeated_run(every)) is not None:
        seed, arch, first, again = twice
        sys.exit(f"error: bar {text!r} has seed {seed} of {arch} twice ({first}, {again}): its cells would count twice")
    if len(settings) > 1:
        kinds = [kept for _, kept in settings.values()]
        differ = sorted(k for k in set().union(*kinds) if len({json.dumps(s.get(k)) for s in kinds}) > 1)
        shown = "; ".join(sorted({name for name, _ in settings.values()}))
        sys.exit(
            f"error: bar {text!r} pools points of other settings ({shown}; they differ in {', '.join(differ)}): "
            "one protocol a bar"
        )
    ((name, _),) = settings.values()
    return name, rows


def shares_table(bars: list[str]) -> pd.DataFrame:
    """Per bar (dataset, size, architecture, seeds), hull rule, comparison and verdict: its cells."""
    out, made = [], {}
    for i, text in enumerate(bars):
        setting, rows = bar_rows(text)
        per_arch = {}
        for (_, seed, arch, hulls), row in rows.items():
            cell = per_arch.setdefault((arch, hulls), {"seeds": set(), "accuracy": [], "counts": {}})
            cell["seeds"].add(seed)
            cell["accuracy"].append(row["test accuracy"])
            for comparison, n in row["counts"].items():
                cell["counts"].setdefault(comparison, Counter()).update(n)
        for (arch, hulls), cell in per_arch.items():
            # the originals' test accuracy beside the verdicts: a bar of models at chance reads apart
            low, high = min(cell["accuracy"]), max(cell["accuracy"])
            accuracy = f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f} to {high:.2f}"
            bar = f"{setting}, {ARCH_NAMES.get(arch, arch)} ({len(cell['seeds'])} seeds, accuracy {accuracy})"
            if made.setdefault(bar, i) != i:
                sys.exit(f"error: bars {bars[made[bar]]!r} and {text!r} are both {bar!r}: pool them in one bar")
            for comparison, n in cell["counts"].items():
                for verdict, cells in n.items():
                    out.append((bar, hulls, comparison, SHOWN[verdict], cells))
    table = pd.DataFrame(out, columns=["bar", "hulls", "comparison", "verdict", "cells"])
    return table.groupby(["bar", "hulls", "comparison", "verdict"], sort=False, as_index=False)["cells"].sum()


def main(*args: str) -> None:
    ap = argparse.ArgumentParser(
        prog="python tools/verdict_figure.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("bars", nargs="+", help="SWEEP[+SWEEP...][@NAME=VALUE[,NAME=VALUE...]], one per bar")
    ap.add_argument("--out", required=True, help="the picture (PNG); its table goes beside it as .csv")
    parsed = ap.parse_args(args)
    out = Path(parsed.out)
    table = shares_table(parsed.bars)  # everything read before anything is written
    seeds = "; ".join(dict.fromkeys(table["bar"]))
    title = (
        "Each comparison over the seed sweeps' (seed, method, class) cells: holds = GAD's side ahead, "
        f"fails = behind (95% bootstrap intervals over the images, at least {min_pairs()}), else undecided"
    )
    figures.verdict_shares(table, out, title)
    atomic_write(out.with_suffix(".csv"), lambda f: f.write(table.to_csv(index=False).encode()))
    print(f"{out} and {out.with_suffix('.csv')}: {seeds}")


if __name__ == "__main__":
    main(*sys.argv[1:])
