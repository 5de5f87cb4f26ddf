"""The paper's figures, regenerated from a run folder (PNG, titled and labelled)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless under Papermill and CI; notebooks still display the saved PNGs
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from .config import METHOD_SHORT
from .consensus import RS_REGIONS
from .runfiles import atomic_write

MAP_CMAP = "gray_r"  # white = unimportant, black = important, as in the paper


def _seaborn():
    """seaborn, imported when a figure needs it: it imports scipy.stats (about 0.7 s), which the
    notebooks that draw no seaborn figure never need, and each notebook starts a new kernel."""
    import seaborn

    return seaborn


def _save(fig, path: Path) -> Path:
    path = Path(path)
    atomic_write(path, lambda f: fig.savefig(f, format=path.suffix[1:], dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


def _img(ax, image_uint8: torch.Tensor, title: str | None = None):
    ax.imshow(image_uint8.permute(1, 2, 0).numpy())
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def _map(ax, m: torch.Tensor, title: str | None = None):
    ax.imshow(m.numpy(), cmap=MAP_CMAP, vmin=0, vmax=float(m.max()) or 1.0)
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def _outline(ax, mask: torch.Tensor, colour: str):
    if mask.any():
        ax.contour(mask.numpy().astype(float), levels=[0.5], colors=[colour], linewidths=1.2)


def logit_space_panels(df: pd.DataFrame) -> list[tuple[str, tuple[float, float], str]]:
    """Fig. 1's panels: (what, (alpha, alpha_c2), title), the original's, then one per support."""
    pairs = df.loc[df["what"] != "original", ["alpha", "alpha_c2"]].itertuples(index=False)
    return [("original", (0.0, 0.0), "original logits")] + [
        ("support", (a, b), f"support, alpha={a:g}" + ("" if a == b else f" / {b:g}")) for a, b in sorted(set(pairs))
    ]


def logit_space(df: pd.DataFrame, classes: list[str], path: Path, title: str) -> Path:
    """Paper Fig. 1: the original logits, the distanced targets and the supports' outputs."""
    sns = _seaborn()
    if "alpha_c2" not in df:  # a logit_space.csv from before alphas_c2 was stored: one alpha per support
        df = df.assign(alpha_c2=df["alpha"])
    panels = logit_space_panels(df)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), sharex=True, sharey=True)
    for ax, (what, (alpha, alpha_c2), name) in zip(np.atleast_1d(axes), panels):
        pick = (df["alpha"] == alpha) & (df["alpha_c2"] == alpha_c2)
        d = df[(df["what"] == what) & pick]
        sns.scatterplot(
            data=d, x="z1", y="z2", hue="label", hue_order=classes, s=8, alpha=0.5, ax=ax, legend=ax is axes[0]
        )
        if what == "support":
            t = df[(df["what"] == "target") & pick]
            ax.scatter(t["z1"], t["z2"], s=2, c="k", alpha=0.15, label="target")
        ax.axline((0, 0), slope=1, color="grey", lw=0.8, ls="--")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(f"logit {classes[0]}")
        ax.set_ylabel(f"logit {classes[1]}")
    fig.suptitle(title, y=1.04)
    return _save(fig, path)


def consensus_example(image, maps, consensus_mask, gad, alphas, method, path: Path, title: str) -> Path:
    """Paper Fig. 3: one image, the original and support maps, the consensus and the GAD map."""
    n = len(maps)
    fig, axes = plt.subplots(1, n + 3, figsize=(1.9 * (n + 3), 2.2))
    _img(axes[0], image, "image")
    for k in range(n):
        _map(axes[k + 1], maps[k], "original" if k == 0 else f"support a={alphas[k - 1]:g}")
    axes[n + 1].imshow(consensus_mask.numpy(), cmap="gray_r")
    axes[n + 1].set_title("consensus", fontsize=8)
    axes[n + 1].set_xticks([]), axes[n + 1].set_yticks([])
    _map(axes[n + 2], gad, "GAD map")
    fig.suptitle(f"{title} - {METHOD_SHORT[method]}", fontsize=10)
    return _save(fig, path)


def hull_on_map(m, hull, path: Path, title: str) -> Path:
    """Paper Fig. 4: a convex hull drawn on an attribution map."""
    fig, ax = plt.subplots(figsize=(3, 3))
    _map(ax, m)
    _outline(ax, hull, "tab:red")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def original_vs_gad_grid(panels: dict, path: Path, title: str) -> Path:
    """Paper Fig. 5: per architecture, rows of original and GAD maps for every method.

    panels: {arch: (images (k,3,H,W) uint8, {method: (orig (k,H,W), gad (k,H,W))}, predicted names)}"""
    archs = list(panels)
    methods = list(next(iter(panels.values()))[1])
    k = len(next(iter(panels.values()))[0])
    rows = 1 + 2 * len(methods)
    fig, axes = plt.subplots(rows, k * len(archs), figsize=(1.3 * k * len(archs), 1.3 * rows), squeeze=False)
    for a, arch in enumerate(archs):
        images, maps, predicted = panels[arch]
        for j in range(k):
            col = a * k + j
            _img(axes[0, col], images[j], f"{arch}\npred: {predicted[j]}" if j == 0 else f"pred: {predicted[j]}")
            for i, method in enumerate(methods):
                orig, gad = maps[method]
                _map(axes[1 + 2 * i, col], orig[j])
                _map(axes[2 + 2 * i, col], gad[j])
                if col == 0:
                    axes[1 + 2 * i, col].set_ylabel(f"{METHOD_SHORT[method]}\norig", fontsize=8)
                    axes[2 + 2 * i, col].set_ylabel(f"{METHOD_SHORT[method]}\nGAD", fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def original_vs_gad(images: torch.Tensor, explanation, titles: list[str], path: Path | None = None):
    """A GAD explanation at a glance: the original map (top row) and the GAD map (bottom row)
    over each image (uint8 or [0, 1] float, (N, 3, H, W)), drawn with captum's
    `visualize_image_attr`. Returns the PNG as an IPython image, which a notebook shows (this
    module draws off-screen), and writes it to `path` too when given."""
    import io

    from captum.attr import visualization as viz
    from IPython.display import Image

    images = images.float() / 255 if images.dtype == torch.uint8 else images
    fig, axes = plt.subplots(2, len(images), figsize=(2 * len(images), 4.4), squeeze=False)
    for row, (kind, maps) in enumerate([("original", explanation.original), ("GAD", explanation.gad)]):
        for i, title in enumerate(titles):
            viz.visualize_image_attr(
                maps[i, ..., None].numpy(),
                images[i].permute(1, 2, 0).numpy(),
                "blended_heat_map",
                plt_fig_axis=(fig, axes[row, i]),
                use_pyplot=False,
                title=f"{kind}: {title}",
            )
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    if path is not None:
        _save(fig, Path(path))
    plt.close(fig)
    return Image(data=buffer.getvalue())


def hull_comparison(panels: dict, path: Path, title: str) -> Path:
    """Paper Fig. 6: original hull (red) vs GAD hull (green) on the least-activated images.

    panels: {arch: (images (k,3,H,W) uint8, labels names, {method: (orig hulls, gad hulls)})}"""
    archs = list(panels)
    methods = list(next(iter(panels.values()))[2])
    k = len(next(iter(panels.values()))[0])
    fig, axes = plt.subplots(
        len(methods), k * len(archs), figsize=(1.4 * k * len(archs), 1.45 * len(methods)), squeeze=False
    )
    for a, arch in enumerate(archs):
        images, names, hulls = panels[arch]
        for i, method in enumerate(methods):
            orig, gad = hulls[method]
            for j in range(k):
                ax = axes[i, a * k + j]
                _img(ax, images[j], f"{arch}: {names[j]}" if i == 0 else None)
                _outline(ax, orig[j], "red")
                _outline(ax, gad[j], "lime")
                if a * k + j == 0:
                    ax.set_ylabel(METHOD_SHORT[method], fontsize=8)
    fig.suptitle(title + "  (red: original hull, green: GAD hull)")
    return _save(fig, path)


def rc_distribution(rc: pd.DataFrame, path: Path, title: str) -> Path:
    sns = _seaborn()
    d = rc.assign(method=rc["method"].map(METHOD_SHORT))
    g = sns.catplot(
        data=d, x="method", y="rc", hue="arch", col="hull_rule", kind="box", height=3.2, aspect=1.3, fliersize=1
    )
    for ax in g.axes.flat:
        ax.axhline(1, color="grey", ls="--", lw=0.8)
    g.set_axis_labels("method", "RC = area(GAD hull) / area(original hull)")
    g.figure.suptitle(title, y=1.03)
    return _save(g.figure, path)


def rs_distribution(rs: pd.DataFrame, path: Path, title: str) -> Path:
    sns = _seaborn()
    d = rs.dropna(subset=["rs"]).assign(method=rs["method"].map(METHOD_SHORT))
    d = d[d["rs"] > 0].assign(log10_rs=lambda t: np.log10(t["rs"]))
    g = sns.catplot(
        data=d,
        x="method",
        y="log10_rs",
        hue="mask",
        hue_order=list(RS_REGIONS),  # every region notebook 05 scores
        row="arch",
        col="hull_rule",
        kind="box",
        height=3,
        aspect=1.4,
        fliersize=1,
    )
    g.set_axis_labels("method", "log10 RS (logit change per occluded pixel)")
    g.figure.suptitle(title, y=1.02)
    return _save(g.figure, path)


def example_grid(
    images: torch.Tensor, names: list[str], path: Path, title: str, masks: torch.Tensor | None = None
) -> Path:
    """A few dataset images with their class (and the ground-truth object outline if known)."""
    k = len(images)
    fig, axes = plt.subplots(1, k, figsize=(1.5 * k, 1.8), squeeze=False)
    for j, ax in enumerate(axes[0]):
        _img(ax, images[j], names[j])
        if masks is not None:
            _outline(ax, masks[j], "yellow")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def forest(paired: pd.DataFrame, path: Path, title: str) -> Path:
    """GAD minus each control per image (> 0 favours GAD), mean and 95% bootstrap interval: one
    panel per metric (RS per hull rule), one row per method and control."""
    sns = _seaborn()
    panels = [
        (m, r)
        for m, r in paired[["metric", "hull_rule"]].drop_duplicates().itertuples(index=False)
        if m in ("rs", "deletion", "insertion")
    ]
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(3.4 * len(panels), 0.28 * paired["method"].nunique() * paired["GAD vs"].nunique() + 1.2),
        sharey=False,
    )
    colours = dict(zip(["sup", "orig", "base", "gad0", "smooth"], sns.color_palette("tab10", 5)))
    for ax, (metric, rule) in zip(np.atleast_1d(axes), panels):
        d = paired[(paired["metric"] == metric) & (paired["hull_rule"] == rule)].reset_index(drop=True)
        y = np.arange(len(d))[::-1]
        for yi, (_, row) in zip(y, d.iterrows()):
            c = colours.get(row["GAD vs"], "k")
            ax.plot([row["low"], row["high"]], [yi, yi], color=c, lw=2)
            ax.plot(row["mean"], yi, "o", color=c, ms=4)
        ax.axvline(0, color="grey", lw=0.8, ls="--")
        ax.set_yticks(y, [f"{METHOD_SHORT[m]} vs {v}" for m, v in zip(d["method"], d["GAD vs"])], fontsize=7)
        ax.set_title(f"{metric}" + (f" ({rule} hulls)" if rule != "none" else ""), fontsize=9)
        ax.set_xlabel("<- control better | GAD better ->", fontsize=8)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def cascade(rows: pd.DataFrame, path: Path, title: str) -> Path:
    """Cascading randomisation: mean Spearman of the randomised maps with the trained ones, per
    method, for the original and the GAD map, as more layers are randomised."""
    d = rows.groupby(["method", "map", "step", "randomised"], sort=False)["spearman"].mean().reset_index()
    methods = list(dict.fromkeys(d["method"]))
    fig, axes = plt.subplots(1, len(methods), figsize=(2.6 * len(methods), 2.8), sharey=True)
    for ax, method in zip(np.atleast_1d(axes), methods):
        for kind, style in (("orig", "-o"), ("gad", "--s"), ("base", ":^")):
            g = d[(d["method"] == method) & (d["map"] == kind)]
            ax.plot(
                g["step"],
                g["spearman"],
                style,
                ms=3,
                label={"orig": "original", "gad": "GAD", "base": "matched-area baseline"}[kind],
            )
        ax.set_xticks(g["step"], g["randomised"], rotation=45, ha="right", fontsize=7)
        ax.set_title(METHOD_SHORT[method], fontsize=9)
        ax.axhline(0, color="grey", lw=0.8, ls=":")
    np.atleast_1d(axes)[0].set_ylabel("Spearman with trained map")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def sweep_effects(table: pd.DataFrame, path: Path, title: str) -> Path:
    """Notebook 08: each measure (rows) against each swept parameter (columns), one marker per
    method (and line style per architecture), with 95% bootstrap intervals, and each measure's
    reference (dotted)."""
    from .sweep_effects import reference

    sns = _seaborn()
    params = list(dict.fromkeys(table["parameter"]))
    measures = list(dict.fromkeys(table["measure"]))
    methods = list(dict.fromkeys(table["method"]))
    archs = list(dict.fromkeys(table["arch"]))
    colours = dict(zip(methods, sns.color_palette("tab10", len(methods))))
    fig, axes = plt.subplots(  # constrained: the title above the top row, not over it
        len(measures),
        len(params),
        figsize=(3.6 * len(params), 2.6 * len(measures)),
        squeeze=False,
        layout="constrained",
    )
    width = 0.8 / max(1, len(methods) * len(archs))
    for i, measure in enumerate(measures):
        for j, param in enumerate(params):
            ax = axes[i, j]
            d = table[(table["measure"] == measure) & (table["parameter"] == param)]
            values = list(dict.fromkeys(d["value"]))
            for k, (arch, method) in enumerate((a, m) for a in archs for m in methods):
                e = d[(d["arch"] == arch) & (d["method"] == method)].set_index("value").reindex(values)
                x = np.arange(len(values)) - 0.4 + width * (k + 0.5)
                ax.errorbar(
                    x,
                    e["mean"],
                    yerr=[e["mean"] - e["low"], e["high"] - e["mean"]],
                    fmt="o-" if archs.index(arch) == 0 else "s--",
                    ms=3,
                    lw=0.8,
                    capsize=2,
                    color=colours[method],
                    label=f"{method}" + (f" {arch}" if len(archs) > 1 else ""),
                )
            ax.axhline(reference(measure), color="grey", ls=":", lw=0.8)
            ax.set_xticks(range(len(values)), values, fontsize=7)
            if i == len(measures) - 1:
                ax.set_xlabel(param)
            if j == 0:
                ax.set_ylabel(measure)
    axes[0, -1].legend(fontsize=7, loc="best")
    fig.suptitle(title)
    return _save(fig, path)


# tools/verdict_figure.py's columns: seed_checks' comparisons, and the verdicts of their cells
VERDICT_PANELS = {
    "RC<1 for most": "RC < 1 for most images\n(the paper's claim 1)",
    "RS GAD vs Sup": "RS: GAD above the rest of the\noriginal hull (the paper's claim 2)",
    "RS GAD vs Base": "RS: GAD above the\nmatched-area baseline",
    "logit change GAD vs Base": "logit change: GAD above the\nmatched-area baseline",
    "GAD vs Base(hull), both": "RS and logit change: GAD above\nthe hull-matched baseline",
}
VERDICT_COLOURS = {
    "holds": "#55a868",
    "undecided": "#bbbbbb",
    "fails": "#c44e52",
    "no difference": "#e8e8e8",
    "too few images": "#efe3c4",
    "undefined": "#f8f8f8",
}


def verdict_shares(table: pd.DataFrame, path: Path, title: str) -> Path:
    """Per comparison (columns) and hull rule (rows of panels), one horizontal bar per dataset,
    image size and architecture: the share of its (seed, method, class) cells where the comparison
    holds (GAD's side ahead, shown), is undecided or fails, from `table` (bar, hulls, comparison,
    verdict, cells), with the cells' count beside each bar."""
    # a comparison or verdict renamed where the table is made would else fall out of the picture unseen
    if unknown := sorted(set(table["comparison"]) - set(VERDICT_PANELS)):
        raise ValueError(f"verdict_shares: no panel for the comparisons {unknown} (figures.VERDICT_PANELS)")
    if unknown := sorted(set(table["verdict"]) - set(VERDICT_COLOURS)):
        raise ValueError(f"verdict_shares: no colour for the verdicts {unknown} (figures.VERDICT_COLOURS)")
    bars = list(dict.fromkeys(table["bar"]))
    rules = list(dict.fromkeys(table["hulls"]))
    panels = [c for c in VERDICT_PANELS if c in set(table["comparison"])]
    fig, axes = plt.subplots(
        len(rules),
        len(panels),
        figsize=(2.9 * len(panels) + 1.6, 0.34 * len(bars) * len(rules) + 1.4 * len(rules)),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    y = np.arange(len(bars))[::-1]
    for i, rule in enumerate(rules):
        for j, comparison in enumerate(panels):
            ax = axes[i, j]
            d = table[(table["hulls"] == rule) & (table["comparison"] == comparison)]
            counts = d.pivot_table(index="bar", columns="verdict", values="cells", aggfunc="sum", fill_value=0)
            counts = counts.reindex(index=bars, columns=list(VERDICT_COLOURS), fill_value=0)
            shares = counts.div(counts.sum(axis=1).where(lambda n: n > 0), axis=0).fillna(0)
            left = np.zeros(len(bars))
            for verdict, colour in VERDICT_COLOURS.items():
                ax.barh(y, shares[verdict], left=left, color=colour, height=0.75, label=verdict)
                left += shares[verdict].to_numpy()
            for yi, (h, f, n) in zip(y, zip(counts["holds"], counts["fails"], counts.sum(axis=1))):
                ax.text(1.02, yi, f"{h}/{f} of {n}", va="center", fontsize=6.5)  # holds / fails of the cells
            ax.set_xlim(0, 1)
            ax.set_xticks([0, 0.5, 1], ["0", "50%", "100%"], fontsize=7)
            ax.set_title(VERDICT_PANELS[comparison] if i == 0 else "", fontsize=8)
            if j == 0:
                ax.set_yticks(y, bars, fontsize=7.5)
                ax.set_ylabel(f"{rule} hulls", fontsize=8)
    drawn = set(table["verdict"])  # the pale ones (ties, too few images, nothing scored) only where a cell has them
    handles, labels = zip(*((h, v) for h, v in zip(*axes[0, 0].get_legend_handles_labels()) if v in drawn))
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
