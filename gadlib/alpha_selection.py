"""Automatic alpha selection, judged on the test images only after the choice is made.

The rule looks only at the training split. A seeded share of it (20%) is held out for
validation. One support per candidate alpha is trained on the rest, with the run's epochs,
learning rate and seed, exactly as `GAD.fit` trains supports.

On the validation images, each support's logits are compared with the original's by Spearman
rank correlation, one logit at a time. The rule keeps the candidates whose lowest correlation
is at least `min_spearman` (0.98). The paper asks the supports to keep the order of the
original's activations; a support that reorders its logits no longer "thinks" like the original.

Of the kept candidates, the rule chooses the `k` largest (4, as many as the paper's alphas):
the widest distancing that still keeps that order. If fewer candidates are kept, all of them
are chosen; if none is, the smallest candidate is.

    python -m gadlib.alpha_selection              # choose on the synthetic default run (resnet18)
    python -m gadlib.alpha_selection --evaluate   # then sweep the choice against fixed and other alphas

`--evaluate` runs the sweep `alpha-selection` over
[chosen, the paper's 2-4-6-8, and the other alphas in EVALUATED], at the run's settings. It then
writes figures/alpha-selection/comparison.md, marking the best alphas in hindsight for each
measure.
"""

from __future__ import annotations

import argparse
import json
import sys

import pandas as pd
import torch

from .config import PAPER_ALPHAS, figures_root
from .errors import GADInputError

CANDIDATES = (1, 2, 3, 4, 6, 8, 10, 12, 16, 24)
PAPER = [int(a) for a in PAPER_ALPHAS]  # as whole numbers: the points' names and grids spell them so
EVALUATED = [[1, 2, 3, 4], [8, 10, 12, 16]]  # besides the chosen and the paper's: a low and a high set


def validation_split(n: int, share: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded (fit, validation) indices of a training split of n images."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 1000))
    n_val = max(1, int(round(share * n)))
    return order[n_val:].sort().values, order[:n_val].sort().values


def candidate_report(cfg, data, original, candidates=CANDIDATES, share: float = 0.2) -> pd.DataFrame:
    """One row per candidate alpha: Spearman rank correlation of each logit with the original's
    on the validation part, MSE to the distanced targets and accuracy there."""
    from .gad import GAD
    from .training import family_report, lowest_spearman

    fit, val = validation_split(len(data.train), share, cfg.seed)
    train = data.train.subset(fit)
    gad = GAD(original, "saliency", alphas=list(candidates)).fit(
        train.images,
        train.labels,
        cfg.support_epochs,
        cfg.support_lr,
        cfg.batch_size,
        cfg.seed,
        cfg.support_mode,
        desc="candidate",
        precision=cfg.train_precision,
    )
    val_images, val_labels = data.train.images[val], data.train.labels[val]
    report = family_report(original, gad.supports, list(candidates), val_images, val_labels).iloc[1:]  # supports
    columns = [c for c in report if c.startswith("alpha_c")] + ["mse", "accuracy"]
    report = report[columns + [c for c in report if c.startswith("spearman_logit")]]
    return report.assign(alpha=list(candidates), min_spearman=lowest_spearman(report)).set_index("alpha")


def choose(report: pd.DataFrame, k: int = 4, min_spearman: float = 0.98) -> list:
    """The k largest candidates whose supports keep every logit's order (Spearman >= min_spearman)."""
    kept = sorted(a for a in report.index if report.loc[a, "min_spearman"] >= min_spearman)
    if not kept:
        return [min(report.index)]
    return kept[-k:]


def comparison(effects: pd.DataFrame, chosen: list) -> pd.DataFrame:
    """Per alphas setting, method and measure, the estimate with its interval, which setting is
    the chosen one and the paper's, and which is best in hindsight (the highest mean). Only the
    measures where higher is better for GAD (`sweep_effects.GAINS`), not the hull areas."""
    from .sweep_effects import GAINS

    d = effects[(effects["parameter"] == "alphas") & effects["measure"].isin(GAINS)].copy()
    d["setting"] = d["value"].map(
        lambda v: "chosen" if json.loads(v) == chosen else "paper" if json.loads(v) == PAPER else "other"
    )
    best = d.groupby(["arch", "method", "measure"])["mean"].transform("max")
    d["best in hindsight"] = d["mean"] == best
    cols = ["arch", "method", "measure", "value", "setting", "mean", "low", "high", "best in hindsight"]
    return d[cols].reset_index(drop=True)


def comparison_text(table: pd.DataFrame) -> str:
    """Markdown: one row per method and measure, one column per alphas setting ("mean [low,
    high]", * for the best in hindsight), then how often each setting was best and whether the
    chosen alphas' interval ever lies clear of the paper's, then per measure and setting how many
    methods' intervals lie above, contain or lie below the measure's reference."""
    from .sweep_effects import REFERENCES, interval_counts
    from .tables import to_markdown

    t = table.assign(
        cell=table.apply(
            lambda r: f"{r['mean']:.3g} [{r['low']:.3g}, {r['high']:.3g}]" + (" *" if r["best in hindsight"] else ""),
            axis=1,
        ),
        column=table["value"] + " (" + table["setting"] + ")",
    )
    wide = t.pivot_table(
        index=["arch", "method", "measure"], columns="column", values="cell", aggfunc="first", sort=False
    )
    order = sorted(wide.columns, key=lambda c: ("(chosen)" not in c, "(paper)" not in c, c))
    wins = t[t["best in hindsight"]].groupby("column").size().to_dict()
    keyed = table.set_index(["arch", "method", "measure", "setting"])
    clear = []
    for (arch, method, measure), _ in table.groupby(["arch", "method", "measure"], sort=False):
        c, p = keyed.loc[(arch, method, measure, "chosen")], keyed.loc[(arch, method, measure, "paper")]
        if c["low"] > p["high"] or c["high"] < p["low"]:
            clear.append(f"{method} {measure}: chosen {'above' if c['low'] > p['high'] else 'below'} the paper's")
    cells = table.groupby(["arch", "method", "measure"]).ngroups
    summary = (
        f"Best in hindsight (highest mean) in {cells} method-measure cells: "
        + ", ".join(f"{k} {wins.get(k, 0)}" for k in order)
        + " (ties count for each). Chosen vs the paper's 2-4-6-8, intervals apart: "
        + ("; ".join(clear) if clear else "none (every interval overlaps)")
        + "."
    )

    def counted(c: pd.Series) -> str:  # "above / contain / below", then those on too few pictures or missing
        extra = [f"{c[k]} {word}" for k, word in (("too few", "too few"), ("undefined", "none")) if c.get(k)]
        return f"{c['above']} / {c['contains']} / {c['below']}" + (f" ({', '.join(extra)})" if extra else "")

    by_setting = {column: interval_counts(g).apply(counted, axis=1) for column, g in t.groupby("column", sort=False)}
    counts = pd.DataFrame(by_setting)[order].rename_axis("measure")
    refs = ", ".join(f"{m} {REFERENCES[m]:g}" for m in counts.index)
    per_cell = table.groupby(["arch", "method"]).ngroups
    return (
        to_markdown(wide[order], floatfmt=".3g")
        + f"\n\n{summary}\n\nOf each setting's {per_cell} intervals per measure, how many lie above / contain / "
        + f"lie below the measure's reference ({refs}):\n\n"
        + to_markdown(counts)
        + "\n"
    )


def evaluate(chosen: list, base: dict, arch: str, rerun: bool = False) -> str:
    """Sweep the chosen alphas against the paper's and EVALUATED (sweep alpha-selection), and
    compare them (comparison_text)."""
    from . import sweep_effects
    from .sweep import point_name, points_of, run_sweep

    grid = {"alphas": [chosen] + [a for a in [PAPER, *EVALUATED] if a != chosen]}
    run_sweep("alpha-selection", grid, base, [arch], rerun=rerun)
    # the grid's points alone: the index may hold points of an earlier choice
    grid_points = [point_name(p) for p in points_of(grid)]
    points, rc, rs = sweep_effects.read_sweep("alpha-selection", only=grid_points)
    return comparison_text(comparison(sweep_effects.effects(points, rc, rs), chosen))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--profile", default="default")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--min-spearman", type=float, default=0.98)
    ap.add_argument("--evaluate", action="store_true", help="sweep the choice against the paper's and other alphas")
    ap.add_argument(
        "--rerun",
        action="store_true",
        help="run that sweep's finished points again (after a code change; points made under other "
        "definitions run again without it)",
    )
    args = ap.parse_args(argv)
    from . import stages
    from .models import pick_device
    from .runfiles import atomic_write, split_fingerprint
    from .tables import to_markdown

    try:
        values = {"dataset": args.dataset, "data_dir": args.data_dir, "profile": args.profile, "arch": args.arch}
        cfg, data = stages.setup(values)
        original, _ = stages.original_classifier(cfg, data, pick_device(cfg.device), split_fingerprint(data.train))
        report = candidate_report(cfg, data, original)
        chosen = choose(report, min_spearman=args.min_spearman)
        out = figures_root() / "alpha-selection"  # beside its sweep's figures
        text = (
            f"Candidates on a validation part (20%) of {cfg.dataset}'s training split, {cfg.arch}, "
            f"profile {cfg.profile}; kept: lowest Spearman >= {args.min_spearman}; chosen: {chosen}\n\n"
            + to_markdown(report, floatfmt=".4f")
            + "\n"
        )
        atomic_write(out / "selection.md", lambda f: f.write(text.encode()))
        print(text)
        if args.evaluate:
            base = {"dataset": args.dataset, "profile": args.profile}
            if args.data_dir:
                base["data_dir"] = args.data_dir
            text = evaluate(chosen, base, args.arch, args.rerun)
            atomic_write(out / "comparison.md", lambda f: f.write(text.encode()))
            print(text)
    except GADInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
