"""The paper's metrics (RC, RS), its Table 1 and Table 2 layouts, and ground-truth scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .config import METHOD_SHORT, METHODS
from .data import IMAGENET_MEAN, IMAGENET_STD


# ---------------------------------------------------------------- complexity
def area(masks: torch.Tensor) -> torch.Tensor:
    return masks.flatten(-2).sum(-1).double()


def rc(hull_gad: torch.Tensor, hull_orig: torch.Tensor) -> torch.Tensor:
    """RC = area(H_GAD) / area(H_orig); NaN where the original hull is empty."""
    a_orig = area(hull_orig)
    return torch.where(a_orig > 0, area(hull_gad) / a_orig.clamp(min=1), torch.nan)


# ---------------------------------------------------------------- sensitivity
def occlusion_fill(kind: str) -> torch.Tensor:
    """Value of an occluded pixel in the model's (normalised) input space."""
    if kind == "zero":
        return torch.zeros(1, 3, 1, 1)
    if kind == "black":
        return (0 - IMAGENET_MEAN) / IMAGENET_STD
    raise ValueError(f"unknown occlusion fill {kind!r}: choose zero or black")


@torch.no_grad()
def rs(
    model: torch.nn.Module,
    x: torch.Tensor,
    masks: torch.Tensor,
    target: torch.Tensor | int,
    fill: str = "zero",
    batch_size: int = 256,
) -> torch.Tensor:
    """RS(I, M, a) = |N_a(I) - N_a(I * (1 - M))| / sum(M), for a batch.

    x: (N, 3, H, W) normalised images; masks: (K, N, H, W), K masks per image; target: class a
    per image (N,) or one int. Returns (K, N); NaN where a mask is empty."""
    model.eval()
    device = next(model.parameters()).device
    k, n = masks.shape[:2]
    target = torch.as_tensor(target).expand(n)
    fill_value = occlusion_fill(fill).to(device)
    base = torch.cat([model(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, n, batch_size)])
    base = base.gather(1, target[:, None]).squeeze(1)
    flat_masks = masks.reshape(k * n, *masks.shape[-2:])
    img_idx = torch.arange(n).repeat(k)
    out = []
    for i in range(0, k * n, batch_size):
        idx = img_idx[i : i + batch_size]
        m = flat_masks[i : i + batch_size].to(device)[:, None]
        occluded = torch.where(m, fill_value, x[idx].to(device))
        out.append(model(occluded).float().cpu().gather(1, target[idx][:, None]).squeeze(1))
    occluded_logit = torch.cat(out).view(k, n)
    size = area(masks)
    return torch.where(size > 0, (base[None] - occluded_logit).abs().double() / size.clamp(min=1), torch.nan)


# ---------------------------------------------------------------- ground truth
def mass_inside(maps: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Share of a map's attribution mass inside the ground-truth mask (NaN for an all-zero map)."""
    total = maps.flatten(-2).sum(-1).double()
    inside = (maps * truth).flatten(-2).sum(-1).double()
    return torch.where(total > 0, inside / total.clamp(min=1e-30), torch.nan)


def pointing_hit(maps: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Pointing game: does the map's largest pixel fall on the object?"""
    peak = maps.flatten(-2).argmax(-1, keepdim=True)
    return truth.flatten(-2).gather(-1, peak).squeeze(-1).double()


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    union = area(a | b)
    return torch.where(union > 0, area(a & b) / union.clamp(min=1), torch.nan)


# ---------------------------------------------------------------- the paper's tables
def _method_columns(df: pd.DataFrame) -> list[str]:
    present = set(df["method"])
    return [METHOD_SHORT[m] for m in METHODS if m in present]


def table1(rc_rows: pd.DataFrame) -> pd.DataFrame:
    """Counts of RC >= 1 (Orig.k) and RC < 1 (GAD k) per target class k, laid out like the
    paper's Table 1: rows dataset / architecture / Orig.1, GAD 1, Orig.2, GAD 2."""
    d = rc_rows.dropna(subset=["rc"]).assign(m=lambda t: t["method"].map(METHOD_SHORT))
    rows = []
    for (dataset, arch), g in d.groupby(["dataset", "arch"], sort=False):
        for k in (1, 2):
            gk = g[g["target"] == k]
            orig = gk[gk["rc"] >= 1].groupby("m").size()
            gad = gk[gk["rc"] < 1].groupby("m").size()
            rows.append({"dataset": dataset, "arch": arch, "row": f"Orig.{k}", **orig.to_dict()})
            rows.append({"dataset": dataset, "arch": arch, "row": f"GAD {k}", **gad.to_dict()})
    cols = _method_columns(rc_rows)
    out = pd.DataFrame(rows).set_index(["dataset", "arch", "row"]).reindex(columns=cols)
    return out.fillna(0).astype(int)


def table2(rs_rows: pd.DataFrame, masks: tuple[str, ...] = ("sup", "gad")) -> pd.DataFrame:
    """Mean RS x 10^2 per target class for the supplementary (Sup.k) and GAD masks, laid out
    like the paper's Table 2. NaN RS (empty mask) is left out of the mean."""
    names = {"sup": "Sup.{k}", "gad": "GAD {k}", "base": "Base {k}"}
    d = rs_rows.assign(m=lambda t: t["method"].map(METHOD_SHORT))
    rows = []
    for (dataset, arch), g in d.groupby(["dataset", "arch"], sort=False):
        for k in (1, 2):
            for mask in masks:
                gm = g[(g["target"] == k) & (g["mask"] == mask)]
                means = (gm.groupby("m")["rs"].mean() * 100).to_dict()
                rows.append({"dataset": dataset, "arch": arch, "row": names[mask].format(k=k), **means})
    return pd.DataFrame(rows).set_index(["dataset", "arch", "row"]).reindex(columns=_method_columns(rs_rows))


def direction_summary(
    rc_rows: pd.DataFrame, rs_rows: pd.DataFrame, resamples: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Per architecture and method, the paper's two directions and the baseline, as verdicts from
    per-image statistics for each target class (the paper's tables are per class too); seeded
    bootstrap over images, 95%: "holds", "fails" or "undecided (interval contains 0)", the same
    for both classes, or "class 1 ..., class 2 ..." when the classes disagree.
    - RC<1 for most: the share of images with RC < 1 is above one half;
    - RS GAD vs Sup: RS of the GAD hull above that of the supplementary region, image by image;
    - RS GAD vs Base: above that of the matched-area baseline's hull.
    Also the consensus share of the pixels, and the share of images with RC < 1 (both classes)."""
    from .stats import paired_bootstrap, verdict

    def per_class(diffs: dict[int, np.ndarray]) -> str:
        intervals = {k: paired_bootstrap(d, resamples, seed) for k, d in diffs.items()}
        found = {k: verdict(b["low"], b["high"]) for k, b in intervals.items()}
        if len(set(found.values())) == 1:
            return next(iter(found.values()))
        return ", ".join(f"class {k} {v.split(' (')[0]}" for k, v in sorted(found.items()))

    out = []
    for (dataset, arch, method), g in rc_rows.groupby(["dataset", "arch", "method"], sort=False):
        r = rs_rows[(rs_rows["dataset"] == dataset) & (rs_rows["arch"] == arch) & (rs_rows["method"] == method)]
        wide = r.pivot_table(index=["target", "image"], columns="mask", values="rs", dropna=False)
        defined = g.dropna(subset=["rc"])  # an empty original hull has no RC; table1 leaves it out too
        targets = sorted(g["target"].unique())
        out.append(
            {
                "dataset": dataset,
                "arch": arch,
                "method": METHOD_SHORT[method],
                "consensus share": float(g["consensus_share"].mean()),
                "share RC<1": float((defined["rc"] < 1).mean()) if len(defined) else np.nan,
                "RC<1 for most": per_class(
                    {k: (defined.loc[defined["target"] == k, "rc"] < 1).to_numpy(float) - 0.5 for k in targets}
                ),
                "RS GAD vs Sup": per_class({k: (wide.loc[k, "gad"] - wide.loc[k, "sup"]).to_numpy() for k in targets}),
                "RS GAD vs Base": per_class(
                    {k: (wide.loc[k, "gad"] - wide.loc[k, "base"]).to_numpy() for k in targets}
                ),
            }
        )
    return pd.DataFrame(out)


# The direction table's verdict columns, and what tables made before the paired verdicts called
# them (True / False on mean values): tools comparing runs across that change read both.
DIRECTION_VERDICTS = {
    "RC": ("RC<1 for most", "RC holds"),
    "RS>Sup": ("RS GAD vs Sup", "RS GAD > Sup (holds)"),
    "RS>Base": ("RS GAD vs Base", "RS GAD > Base"),
}


def direction_verdict(table: pd.DataFrame, idx, short: str) -> str:
    """The verdict `short` ("RC", "RS>Sup", "RS>Base") of row `idx`, old or new table alike."""
    new, old = DIRECTION_VERDICTS[short]
    if new in table.columns:
        return str(table.loc[idx, new])
    value = table.loc[idx, old]
    return "holds" if str(value) == "True" or value is True else "fails"


def to_markdown(df: pd.DataFrame, floatfmt: str = ".4f") -> str:
    return df.reset_index().to_markdown(index=False, floatfmt=floatfmt)
