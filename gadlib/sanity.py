"""Sanity check (Adebayo et al., 2018): do the maps depend on the model's weights?

Cascading parameter randomisation, top layer first: at each step the top share of the layers
(modules with weights, in forward order from the output back) is re-initialised, in the
original and in every support alike (the same layers, the same random values: each layer is
reset under a seed of its own), and the original and GAD maps are computed again. At the last
step the whole family is one random network, so GAD's map there is the baseline's (below). Their
Spearman rank correlation and SSIM with the trained model's maps fall towards 0 for a method
that depends on the model. Guided Backprop and Deconvolution are known to stay similar.

Quantus's MPRT does the same per layer for one model; here the whole family has to be
randomised together, so the cascade is written out, with Quantus-style top-down order. The
matched-area baseline (the original's top |C| pixels) is cascaded too: it is as sparse as GAD, so
it tells how much of GAD's change comes from sparsity alone.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import torch
from skimage.metrics import structural_similarity

from . import consensus as cons
from . import stats
from .attributions import attribution_maps
from .seeding import seeded

VERSION = 2  # bumped when the rows' definition changes (2: the matched-area baseline beside GAD)
PER_CLASS = 8  # evaluation images of each class that the cascade explains
STEPS = (("top layer", None), ("top 25%", 0.25), ("top 50%", 0.5), ("top 75%", 0.75), ("all layers", 1.0))


def layers(model: torch.nn.Module) -> list[str]:
    """Names of the modules with their own weights, from the output back to the input."""
    return [
        n
        for n, m in model.named_modules()
        if hasattr(m, "reset_parameters") and any(True for _ in m.parameters(recurse=False))
    ][::-1]


def randomised(model: torch.nn.Module, names: list[str], seed: int) -> torch.nn.Module:
    """A copy of `model` with the named layers re-initialised; layer i under seed + i, so two
    models of one architecture get the same random weights."""
    out = copy.deepcopy(model)
    for i, name in enumerate(layers(model)):
        if name in names:
            layer = out.get_submodule(name)
            with seeded(seed + i, next(layer.parameters()).device):  # draws on the layer's device
                layer.reset_parameters()
    return out


def average_ranks(maps: torch.Tensor) -> torch.Tensor:
    """Rank of every pixel of each map (..., H, W) among its map's, flattened (..., H * W), 1 for
    the smallest, tied values given their average rank: scipy's `rankdata` (method "average"),
    as float64, exact, in one batched call on any device (rankdata sorts one map at a time on
    the CPU). In sorted order a run of equal values at positions first..last holds the ranks
    first + 1 to last + 1, so each of them gets (first + last + 2) / 2. A map holding NaN gets
    NaN ranks throughout, as from rankdata (its correlations are then 0)."""
    flat = maps.flatten(-2)
    ordered, order = flat.sort(dim=-1)
    n = ordered.shape[-1]
    position = torch.arange(n, device=maps.device).expand_as(order)
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[..., 1:] = ordered[..., 1:] != ordered[..., :-1]
    ends = torch.ones_like(starts)
    ends[..., :-1] = starts[..., 1:]
    first = torch.where(starts, position, 0).cummax(-1).values
    last = torch.where(ends, position, n).flip(-1).cummin(-1).values.flip(-1)
    ranks = torch.empty(order.shape, dtype=torch.float64, device=maps.device)
    ranks.scatter_(-1, order, (first + last + 2).double() / 2)
    return ranks.masked_fill_(flat.isnan().any(-1, keepdim=True), torch.nan)


def spearman(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Spearman correlation of each pair of maps (..., H, W), tied values given their average
    rank (GAD maps are 0 outside the consensus: ordering those by pixel index would correlate
    any two GAD maps); 0 where a map is constant."""
    return rank_correlation(average_ranks(a), average_ranks(b))


def rank_correlation(ra: torch.Tensor, rb: torch.Tensor) -> np.ndarray:
    """Pearson correlation of two sets of `average_ranks` (..., P): Spearman's; 0 where a map's
    ranks are constant."""
    ra, rb = ra.cpu().numpy(), rb.cpu().numpy()
    ra, rb = ra - ra.mean(-1, keepdims=True), rb - rb.mean(-1, keepdims=True)
    norm = np.linalg.norm(ra, axis=-1) * np.linalg.norm(rb, axis=-1)
    return np.where(norm > 0, (ra * rb).sum(-1) / np.where(norm > 0, norm, 1), 0.0)


def ssim(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """SSIM of each pair of maps (..., H, W), each map first scaled to [0, 1] by its maximum
    (as Adebayo et al. compare normalised maps: a randomised model's gradients differ in scale).
    scikit-image's, one pair at a time, on the CPU (whose rounding the committed runs have);
    `batched_ssim`, its arithmetic in one call, where the maps are on an accelerator."""

    def unit(m):
        m = m.flatten(0, -3).double()
        return m / m.flatten(-2).amax(-1).clamp(min=1e-30)[:, None, None]

    if a.device.type != "cpu":
        return batched_ssim(unit(a), unit(b)).cpu().numpy().reshape(a.shape[:-2])
    out = [structural_similarity(x, y, data_range=1.0) for x, y in zip(unit(a).numpy(), unit(b).numpy())]
    return np.array(out).reshape(a.shape[:-2])


def batched_ssim(x: torch.Tensor, y: torch.Tensor, win: int = 7, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """scikit-image's `structural_similarity(x, y, data_range=1.0)` of each pair of images
    (N, H, W), in one call on their device: its 7 x 7 uniform window with the sample covariance,
    and the mean over the windows that lie inside the image (it filters with reflected borders,
    then leaves out the 3 pixels those reach). The same values up to the order of additions."""
    means = torch.nn.functional.avg_pool2d(torch.stack([x, y, x * x, y * y, x * y], 1), win, stride=1)
    ux, uy, uxx, uyy, uxy = means.unbind(1)
    sample = win * win / (win * win - 1)
    vx, vy, vxy = sample * (uxx - ux * ux), sample * (uyy - uy * uy), sample * (uxy - ux * uy)
    c1, c2 = k1**2, k2**2
    s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)


def cascade(cfg, family_models: list[torch.nn.Module], x: torch.Tensor, precision: dict) -> pd.DataFrame:
    """Per step, method, target class and image: similarity of the randomised family's original
    and GAD maps with the trained family's."""

    def maps_of(models):
        m = attribution_maps(
            models,
            x,
            list(cfg.methods),
            ig_steps=cfg.ig_steps,
            batch_size=cfg.batch_size,
            internal_batch=cfg.ig_internal_batch,
            precision=precision,
            progress=False,
        )
        out = {}
        for k, v in m.items():
            _, views = cons.regions(v, cfg.consensus_rule, cfg.consensus_q, cfg.consensus_tau)
            out[k] = (views["orig"], views["gad"], views["base"])
        return out

    # ranked where the models run (exact on any device); the trained maps moved and ranked once,
    # not at every step
    device = next(family_models[0].parameters()).device
    trained = {method: [v.to(device) for v in maps] for method, maps in maps_of(family_models).items()}
    trained_ranks = {method: [average_ranks(v) for v in maps] for method, maps in trained.items()}
    names = layers(family_models[0])
    rows = []
    for step, (label, share) in enumerate(STEPS):
        top = names[:1] if share is None else names[: max(1, round(share * len(names)))]
        now = maps_of([randomised(m, top, cfg.seed) for m in family_models])
        for method, maps in now.items():
            for i, kind in enumerate(("orig", "gad", "base")):
                a, b = trained[method][i], maps[i].to(device)
                rho = rank_correlation(trained_ranks[method][i], average_ranks(b))
                s = ssim(a, b)  # batched on an accelerator
                for t in (0, 1):
                    rows.append(
                        pd.DataFrame(
                            {
                                "method": method,
                                "step": step,
                                "randomised": label,
                                "layers": len(top),
                                "map": kind,
                                "target": t + 1,
                                "image": range(len(x)),
                                "spearman": rho[t],
                                "ssim": s[t],
                            }
                        )
                    )
    return pd.concat(rows, ignore_index=True)


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean Spearman and SSIM per method, step and map (orig / gad), steps as columns."""
    t = rows.groupby(["method", "map", "step", "randomised"], sort=False)[["spearman", "ssim"]].mean()
    return t.reset_index().pivot_table(index=["method", "map"], columns="randomised", values="spearman", sort=False)


def verdicts(rows: pd.DataFrame, resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """With every layer random: mean Spearman and SSIM of the original's, GAD's and the
    matched-area baseline's maps with their trained maps (high: the map hardly depends on the
    model). GAD is judged against the baseline, which is as sparse as GAD (a sparser map
    correlates less by itself), image by image (its classes averaged) with a seeded 95%
    bootstrap interval of GAD's Spearman minus the baseline's: "more model-dependent" (the
    interval below 0), "less model-dependent" (above) or "like the baseline" (it contains 0)."""
    last = rows[rows["step"] == rows["step"].max()]
    means = last.groupby(["method", "map"], sort=False)[["spearman", "ssim"]].mean().unstack()
    out = pd.DataFrame(
        {
            f"{m} {k}": means[(m.lower() if m == "Spearman" else "ssim", key)]
            for m in ("Spearman", "SSIM")
            for k, key in (("orig", "orig"), ("GAD", "gad"), ("base", "base"))
        }
    )
    against = gad_against_base(rows, rows["step"].max(), resamples, seed)
    return out.assign(**{"Spearman GAD - base (95% CI)": against["interval"], "GAD": against["label"]})


def gad_against_base(rows: pd.DataFrame, step: int, resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """At cascade step `step`, per method: GAD's Spearman with its trained map minus the
    matched-area baseline's, image by image (its classes averaged), as "mean [95% interval]"
    (seeded paired bootstrap) and its label. At the last step every layer of every model is
    random alike, so the family is one network and GAD's randomised map is the baseline's: the
    difference there lies in the two trained maps only. One step earlier the models still
    differ (their lowest quarter of layers is trained: conv1 to layer1 in ResNet18), which
    `tools/controls_summary.py` shows beside it."""
    at = rows[rows["step"] == step]
    wide = at.pivot(index=["method", "target", "image"], columns="map", values="spearman")
    words = {
        stats.HOLDS: "less model-dependent",
        stats.FAILS: "more model-dependent",
        stats.TOO_FEW: stats.TOO_FEW,
        stats.UNDEFINED: "undefined",
    }
    diff, label = {}, {}
    for method in at["method"].unique():
        per_image = stats.image_means(wide.loc[method, "gad"] - wide.loc[method, "base"])
        b = stats.paired_bootstrap(per_image, resamples, seed)
        diff[method] = f"{b['mean']:+.3f} [{b['low']:+.3f}, {b['high']:+.3f}]"
        label[method] = words.get(stats.verdict(b["low"], b["high"], b["n"]), "like the baseline")
    return pd.DataFrame({"interval": pd.Series(diff), "label": pd.Series(label)})
