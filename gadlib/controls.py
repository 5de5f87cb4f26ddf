"""The controls a reviewer asks for (notebook 07): is GAD's region better than what simpler
means give at the same area?

For every evaluation image, method and target class, five maps are compared:
- `orig`: the original map; `gad`: the original map on the consensus (METHOD.md step 3);
- `base`: the matched-area baseline, the original map's own top |C| pixels;
- `gad0`: GAD with supports trained with alpha = 0 (targets = the original's logits; same epochs,
  optimiser, seeds and support mode), so retraining noise alone shrinks its consensus;
- `smooth`: SmoothGrad over the same base method (NoiseTunnel's definition and noise, on the
  engine, in the family's precision; sd = smoothgrad_noise x the input range, as many samples as
  models in the family) kept at the same top-|C| area.
Each is scored by RS of its hull (and `sup`, the original hull minus GAD's, as in the paper),
RC, deletion and insertion AUC (no hull), and on synthetic data against the true object. The
paired table gives GAD minus each control per image (signed so that > 0 favours GAD), with a
seeded bootstrap interval, the share of images where GAD wins, and a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import consensus as cons
from . import faithfulness, metrics, runfiles, sanity, stats
from .attributions import attribution_maps, smoothgrad_maps
from .config import RunConfig
from .data import Dataset, normalize
from .hulls import hulls_of
from .runfiles import RunFiles
from .tables import to_markdown

# Bumped when the rows' definition changes, so that stored rows made the old way are recomputed.
ROWS_VERSION = 3  # 2: curves and the true object for the image's own class; ties in a curve in seeded order;
# 3: made from version 2 control maps
MAPS_VERSION = 2  # of the control maps; 2: SmoothGrad on the engine, in the family's precision (NoiseTunnel, fp32)
# +1: a larger value is better for the map; -1: smaller is better (deletion: the logit falls fast)
BETTER = {"rs": 1, "deletion": -1, "insertion": 1, "mass_inside": 1, "pointing_hit": 1, "hull_iou": 1}
VERSUS = {"rs": ("sup", "base", "gad0", "smooth")}  # RS: the paper's comparison first
VERSUS_MAPS = ("orig", "base", "gad0", "smooth")


@dataclass
class Controls:
    rows: pd.DataFrame  # per image: method, hull_rule, target, image, map, metric, value
    paired: pd.DataFrame  # GAD against each control: mean, interval, share of wins, verdict
    means: pd.DataFrame  # mean of each metric per map, side by side
    stamp: dict


def control_family(cfg: RunConfig, data: Dataset, family) -> tuple[list[torch.nn.Module], list[str]]:
    """Supports trained exactly like GAD's (same seeds, epochs, optimiser, mode) but with alpha = 0."""
    from .stages import support_stamp, train_supports

    files = RunFiles(cfg)
    train_split = runfiles.split_fingerprint(data.train)
    n = len(cfg.support_alphas)
    stamps = [support_stamp(cfg, (0.0, 0.0), family.fingerprints[0], train_split, i, stage="control") for i in range(n)]
    models, records = train_supports(
        cfg, data, family.original, [(0.0, 0.0)] * n, [files.control(i) for i in range(n)], stamps, what="control"
    )
    return models, [r["fingerprint"] for r in records]


def control_maps(cfg: RunConfig, ev, family, attr, controls: list, control_fps: list[str]) -> dict:
    """{"gad0": {method: (controls, 2, N, H, W)}, "smooth": {method: (2, N, H, W)}} for the
    evaluation images `ev`, cached."""
    files = RunFiles(cfg)
    st = runfiles.stamp(
        "control_maps",
        cfg,
        runfiles.CONTROL_FIELDS,
        models=family.fingerprints,
        controls=control_fps,
        precision=attr.precision,
        images=runfiles.split_fingerprint(ev),
        definition=MAPS_VERSION,
    )
    x = normalize(ev.images)
    device = next(family.original.parameters()).device

    def compute():
        gad0 = attribution_maps(
            controls,
            x,
            list(cfg.methods),
            ig_steps=cfg.ig_steps,
            batch_size=cfg.batch_size,
            internal_batch=cfg.ig_internal_batch,
            device=device,
            precision=attr.precision,
        )
        smooth = smoothgrad_maps(
            family.original,
            x,
            list(cfg.methods),
            samples=len(family.all),
            noise=cfg.smoothgrad_noise,
            ig_steps=cfg.ig_steps,
            batch_size=cfg.batch_size,
            internal_batch=cfg.ig_internal_batch,
            seed=cfg.seed,
            precision=attr.precision,
            progress=True,
        )
        return {"gad0": gad0, "smooth": smooth}

    return runfiles.cached(files.control_maps, st, compute)


def controls(cfg: RunConfig, data: Dataset, family, attr, comp) -> Controls:
    """Every control of the module docstring for one architecture; per-image rows cached in
    controls.csv, tables (paired, means) computed from them."""
    from .stages import eval_images

    files = RunFiles(cfg)
    models, control_fps = control_family(cfg, data, family)
    st = runfiles.stamp(
        "controls",
        cfg,
        runfiles.CONTROL_FIELDS,
        models=family.fingerprints,
        controls=control_fps,
        attributions=attr.keys,
        precision=attr.precision,
        complexity=comp.key,  # the consensus and hulls it scores: a new hull definition recomputes it
        definition=ROWS_VERSION,
    )
    rows, stored = runfiles.read_csv(files.controls_csv)
    if stored is None or stored["key"] != st["key"]:
        _, ev = eval_images(cfg, data)
        maps = control_maps(cfg, ev, family, attr, models, control_fps)
        rows = _score(cfg, ev, family.original, attr.maps, comp, maps).assign(dataset=cfg.dataset, arch=cfg.arch)
        runfiles.write_csv(rows, files.controls_csv, st)
    return Controls(rows, paired_table(rows, cfg.bootstrap, cfg.seed), means_table(rows), st)


def control_views(original_map, consensus, consensus0, smooth) -> dict:
    """The five maps compared (module docstring): the original map, GAD's, the matched-area
    baseline, GAD's with the alpha = 0 controls' consensus `consensus0`, and the SmoothGrad map
    `smooth` kept at the consensus's area."""
    return {
        **cons.views(original_map, consensus),
        "gad0": cons.gad_map(original_map, consensus0),
        "smooth": cons.matched_area_map(smooth, consensus),
    }


def _score(cfg: RunConfig, ev, original, family_maps: dict, comp, maps: dict) -> pd.DataFrame:
    x = normalize(ev.images)
    fill = metrics.occlusion_fill(cfg.occlusion_fill)
    out, batch = [], cfg.batch_size * 4
    logits = metrics.unoccluded_logits(original, x, batch)  # RS's N_a(I), the same for every region

    def add(method, rule, t, kind, metric, values, images=None):
        images = range(len(ev)) if images is None else images
        out.append(
            pd.DataFrame(
                {
                    "method": method,
                    "hull_rule": rule,
                    "target": t + 1,
                    "image": images,
                    "map": kind,
                    "metric": metric,
                    "value": np.asarray(values, dtype=float),
                }
            )
        )

    # The consensus, the views, the curves' pixel ranks and the hulls run where the models do, as
    # in notebook 04: exact there too (comparisons, counts, integer geometry). The true-object
    # scores sum float maps, whose order of additions differs between devices: on the CPU.
    device = next(original.parameters()).device
    for method, m in tqdm(family_maps.items(), desc="controls", leave=False):
        m, c = m.to(device), comp.consensus[method].to(device)
        c0 = cons.consensus(
            torch.cat([m[:1], maps["gad0"][method].to(device)]), cfg.consensus_rule, cfg.consensus_q, cfg.consensus_tau
        )
        smooth = maps["smooth"][method].to(device)
        views = control_views(m[0], c, c0, smooth)
        on_host = {k: v.cpu() for k, v in views.items()} if ev.masks is not None else {}
        for t in (0, 1):  # curves and the true object: each image for its own class only
            own = torch.nonzero(ev.labels == t).flatten()
            stacked = torch.stack([v[t][own.to(device)] for v in views.values()])
            fractions, deletion, insertion = faithfulness.curves(
                original, x[own], stacked, t, fill, cfg.deletion_step, batch_size=batch, seed=cfg.seed
            )
            for kind, d, i in zip(views, faithfulness.auc(fractions, deletion), faithfulness.auc(fractions, insertion)):
                add(method, "none", t, kind, "deletion", d, own.tolist())
                add(method, "none", t, kind, "insertion", i, own.tolist())
                if ev.masks is not None:
                    add(
                        method,
                        "none",
                        t,
                        kind,
                        "mass_inside",
                        metrics.mass_inside(on_host[kind][t][own], ev.masks[own]),
                        own.tolist(),
                    )
                    add(
                        method,
                        "none",
                        t,
                        kind,
                        "pointing_hit",
                        metrics.pointing_hit(on_host[kind][t][own], ev.masks[own]),
                        own.tolist(),
                    )
        extra = hulls_of({k: views[k] for k in ("gad0", "smooth")}, cfg.hull_rules, cfg.hull_q, cfg.hull_tau)
        extra = {k: v.cpu() for k, v in extra.items()}
        del m, c, c0, smooth, views, stacked  # this method's device tensors go before the next method's arrive
        for rule in cfg.hull_rules:
            h = dict(comp.hulls[(method, rule)])
            for kind in ("gad0", "smooth"):
                h[kind] = extra[(rule, kind)]
            # the hull-matched baseline is compared in notebooks 05 and 06 (baseline_check), not here
            regions = {**cons.occlusion_regions(h), "gad0": h["gad0"], "smooth": h["smooth"]}
            del regions["base_hull"]
            for t in (0, 1):
                rs = metrics.rs(
                    original,
                    x,
                    torch.stack([r[t] for r in regions.values()]),
                    t,
                    cfg.occlusion_fill,
                    batch,
                    logits,
                )
                for kind, v in zip(regions, rs):
                    add(method, rule, t, kind, "rs", v)
                for kind in ("gad", "base", "gad0", "smooth"):
                    add(method, rule, t, kind, "rc", metrics.rc(h[kind][t], h["orig"][t]))
                    if ev.masks is not None:
                        add(method, rule, t, kind, "hull_iou", metrics.iou(h[kind][t], ev.masks))
    return pd.concat(out, ignore_index=True)


def sanity_check(cfg: RunConfig, data: Dataset, family, attr) -> pd.DataFrame:
    """Cascading randomisation of the whole family (gadlib.sanity) on the first
    sanity.PER_CLASS evaluation images of each class; per-image rows cached in sanity.csv."""
    from .precision import probe_indices
    from .stages import eval_images

    files = RunFiles(cfg)
    _, ev = eval_images(cfg, data)
    st = runfiles.stamp(
        "sanity",
        cfg,
        runfiles.CONTROL_FIELDS,
        models=family.fingerprints,
        precision=attr.precision,
        images=runfiles.split_fingerprint(ev),  # the very images: replaced files at the same paths are noticed
        definition=sanity.VERSION,
    )
    rows, stored = runfiles.read_csv(files.sanity_csv)
    if stored is None or stored["key"] != st["key"]:
        idx = probe_indices(ev.labels, sanity.PER_CLASS)
        rows = sanity.cascade(cfg, family.all, normalize(ev.images[idx]), attr.precision)
        rows = rows.assign(dataset=cfg.dataset, arch=cfg.arch)
        runfiles.write_csv(rows, files.sanity_csv, st)
    return rows


def paired_table(rows: pd.DataFrame, resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """GAD against each control, paired per image, for every metric that has a better direction:
    mean of sign x (GAD - control) over images (an image's two target classes averaged; deletion,
    insertion, mass inside and the pointing game are scored for the image's own class only, RS
    and the hull's IoU with the true object for both, unlike notebook 04's ground_truth table,
    which scores the IoU for the own class), its bootstrap interval over images, the share of
    images where GAD is strictly better, and the verdict."""
    out = []
    keys = ["dataset", "arch", "metric", "hull_rule", "method"]
    for (dataset, arch, metric, rule, method), g in rows[rows["metric"].isin(BETTER)].groupby(keys, sort=False):
        wide = g.pivot_table(index=["target", "image"], columns="map", values="value", dropna=False)
        for other in VERSUS.get(metric, VERSUS_MAPS):
            if other not in wide or "gad" not in wide:
                continue
            diff = stats.image_means(BETTER[metric] * (wide["gad"] - wide[other]))
            s = stats.paired_bootstrap(diff, resamples, seed)
            out.append(
                {
                    "dataset": dataset,
                    "arch": arch,
                    "metric": metric,
                    "hull_rule": rule,
                    "method": method,
                    "GAD vs": other,
                    **s,
                    "verdict": stats.verdict(s["low"], s["high"], s["n"]),
                }
            )
    return pd.DataFrame(out)


def means_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean of each metric per map (NaN left out), maps side by side."""
    t = rows.pivot_table(
        index=["dataset", "arch", "metric", "hull_rule", "method"],
        columns="map",
        values="value",
        aggfunc="mean",
        sort=False,
    )
    return t.reindex(columns=[k for k in ("orig", "gad", "sup", "base", "gad0", "smooth") if k in t.columns])


# notebook 07's tables in figures/<run>/, each <name>_<arch>.csv and .md
TABLES = ("controls_verdicts", "controls_paired", "controls_means", "sanity")


def output_files(cfg: RunConfig) -> list[Path]:
    """What notebook 07 writes in figures/<run>/ for cfg.arch: its tables and its two figures."""
    files = RunFiles(cfg)
    tables = [files.figure_dir / f"{name}_{cfg.arch}.{ext}" for name in TABLES for ext in ("csv", "md")]
    return [*tables, files.controls_figure, files.sanity_figure]


def write_tables(cfg: RunConfig, ctrl: Controls, sane: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """In figures/<run>/, as CSV and Markdown: controls_verdicts_<arch> (how many comparisons
    hold, fail or are undecided), controls_paired_<arch>, controls_means_<arch> and
    sanity_<arch> (cascading randomisation)."""
    out_dir = RunFiles(cfg).figure_dir
    p = ctrl.paired
    short = p.assign(
        **{"mean (95% CI)": [f"{m:+.4g} [{lo:+.4g}, {hi:+.4g}]" for m, lo, hi in zip(p["mean"], p["low"], p["high"])]}
    )
    made = {
        "controls_verdicts": verdict_counts(p),
        "controls_paired": short.set_index(["dataset", "arch", "metric", "hull_rule", "method", "GAD vs"])[
            ["n", "mean (95% CI)", "share_wins", "verdict"]
        ],
        "controls_means": ctrl.means,
        "sanity": sanity.verdicts(sane, cfg.bootstrap, cfg.seed),
    }
    assert set(made) == set(TABLES)
    tables = {f"{name}_{cfg.arch}": t for name, t in made.items()}
    for name, t in tables.items():
        runfiles.write_csv(t, out_dir / f"{name}.csv", ctrl.stamp, index=True)
        runfiles.write_text(to_markdown(t) + "\n", out_dir / f"{name}.md", ctrl.stamp)
    return tables


def verdict_counts(paired: pd.DataFrame) -> pd.DataFrame:
    """How many comparisons (one per method, and hull rule where there is one) hold, fail or are
    undecided, per metric and control."""
    t = paired.groupby(["dataset", "arch", "metric", "GAD vs", "verdict"], sort=False).size().unstack(fill_value=0)
    return t.reindex(columns=[c for c in stats.VERDICTS if c in t.columns])
