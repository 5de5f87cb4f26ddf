"""Which precision each attribution method runs in: one choice per method for a whole model
family (the original and every support), judged on what the tables use.

The consensus is an intersection over all models, so rounding noise that differs between
models removes pixels by itself. With `precision="auto"`, bf16 is kept for a method only if,
on probe images of both classes, the bf16 maps of every model give the same consensus masks
and the same hulls (original, GAD, matched-area and hull-matched baseline maps, under every
hull rule) as fp32 in the *worst* probe image: Jaccard / IoU >= MIN_AGREEMENT. Saliency and
Gradient x Input share one pass and so one precision. The decision is stored in the run folder
and lands in the cache keys of the attribution files and in the run record.
"""

from __future__ import annotations

import torch

from . import consensus as cons
from . import metrics, runfiles
from .attributions import GRADIENT_METHODS, attribution_maps
from .config import RunConfig
from .hulls import REGIONS_VERSION, region_hulls

PROBE_PER_CLASS = 4  # probe images per class, the first of each class in the (shuffled) evaluation order
MIN_AGREEMENT = 0.95  # worst-image Jaccard of consensus masks and IoU of hulls, bf16 against fp32


def bf16_available(device: torch.device) -> bool:
    """bf16 autocast pays off on CUDA and on CPUs with native bf16 (AVX512-BF16 or AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def probe_indices(labels: torch.Tensor, per_class: int = PROBE_PER_CLASS) -> torch.Tensor:
    """The first `per_class` images of each class."""
    return torch.cat([torch.nonzero(labels == k).flatten()[:per_class] for k in labels.unique().tolist()])


def worst_agreement(ref: torch.Tensor, low: torch.Tensor, cfg: RunConfig, device=None) -> dict[str, float]:
    """Worst-map agreement of two family stacks (models, classes, N, H, W): of the consensus
    masks, and of every hull the tables use (`region_hulls`: the original, GAD and both baseline
    maps, under every hull rule), each side's hull-matched baseline matched to its own GAD hull."""
    c_ref, v_ref = cons.regions(ref, cfg.consensus_rule, cfg.consensus_q, cfg.consensus_tau)
    c_low, v_low = cons.regions(low, cfg.consensus_rule, cfg.consensus_q, cfg.consensus_tau)
    out = {"consensus": float(metrics.agreement(c_ref, c_low).min())}
    h_ref, h_low = (region_hulls(v, cfg.hull_rules, cfg.hull_q, cfg.hull_tau, device) for v in (v_ref, v_low))
    for rule, name in h_ref:
        out[f"hull {rule} {name}"] = float(metrics.agreement(h_ref[(rule, name)], h_low[(rule, name)]).min())
    return out


def decide(
    ref: dict[str, torch.Tensor],
    low: dict[str, torch.Tensor],
    cfg: RunConfig,
    min_agreement: float = MIN_AGREEMENT,
    device=None,
) -> tuple[dict[str, str], dict[str, dict[str, float]]]:
    """({method: "bf16" | "fp32"}, {method: worst agreements}) from fp32 and bf16 probe maps
    (their hulls filled on `device`, default the maps')."""
    agreement = {m: worst_agreement(ref[m], low[m], cfg, device) for m in ref}
    plan = {m: "bf16" if min(a.values()) >= min_agreement else "fp32" for m, a in agreement.items()}
    shared = [m for m in plan if m in GRADIENT_METHODS]
    if any(plan[m] == "fp32" for m in shared):
        plan.update({m: "fp32" for m in shared})
    return plan, agreement


def plan(
    cfg: RunConfig,
    files: runfiles.RunFiles,
    models: list,
    fingerprints: list[str],
    x: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    device_name: str,
):
    """The precision of each method for this family: (plan, agreement or None, probe or None).

    `probe` is (indices into x, {method: maps}) when the probe ran now, so its maps in the chosen
    precision need not be computed again."""
    methods = list(cfg.methods)
    if cfg.precision != "auto":
        return {m: cfg.precision for m in methods}, None, None
    if not bf16_available(device):
        return {m: "fp32" for m in methods}, None, None
    # the regions' version too: a decision stored before a region was added did not judge it
    st = runfiles.stamp(
        "precision", cfg, runfiles.PRECISION_FIELDS, models=fingerprints, device=device_name, regions=REGIONS_VERSION
    )
    stored = runfiles.load_own(files.precision, st)
    if stored is not None:
        return stored["plan"], stored["agreement"], None
    idx = probe_indices(labels)
    common = dict(
        ig_steps=cfg.ig_steps,
        batch_size=cfg.batch_size,
        internal_batch=cfg.ig_internal_batch,
        device=device,
        progress=False,
    )
    ref = attribution_maps(models, x[idx], methods, precision="fp32", **common)
    low = attribution_maps(models, x[idx], methods, precision="bf16", **common)
    chosen, agreement = decide(ref, low, cfg, device=device)
    runfiles.save(files.precision, {"plan": chosen, "agreement": agreement}, st)
    return chosen, agreement, (idx, {m: (low if chosen[m] == "bf16" else ref)[m] for m in methods})


def describe(cfg: RunConfig, chosen: dict[str, str], agreement: dict | None, device: torch.device) -> str:
    """One line: the precision of each method and why (the run's console shows it)."""
    listed = ", ".join(f"{m} {p}" for m, p in chosen.items())
    if cfg.precision != "auto":
        why = f"set by precision={cfg.precision}"
    elif agreement is None:
        why = f"no fast bf16 on {device.type}"
    else:
        why = f"bf16 kept only where the worst probe image agrees with fp32 at >= {MIN_AGREEMENT}"
    return f"{cfg.arch} attribution precision: {listed} ({why})"
