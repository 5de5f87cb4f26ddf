"""Builds every figure of a run from what notebooks 01-05 stored in the run folder."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from . import consensus as cons
from . import figures
from .config import RunConfig
from .data import Dataset, eval_indices

N_GRID = 4  # images per architecture in the original-vs-GAD grid (Fig. 5)
N_LEAST = 3  # least-activated images per class in the hull comparison (Fig. 6)


def _maps(cfg: RunConfig, arch: str) -> dict[str, torch.Tensor]:
    out = {}
    for method in cfg.methods:
        stored = torch.load(cfg.run_dir / arch / "attributions" / f"{method}.pt", weights_only=False)
        out[method] = stored["value"]
    return out


def example_figure(cfg: RunConfig, data: Dataset) -> Path:
    idx = torch.arange(min(8, len(data.test)))
    split = data.test.subset(idx)
    names = [data.classes[int(k)] for k in split.labels]
    return figures.example_grid(split.images, names, cfg.figure_dir / "dataset_examples.png",
                                f"{cfg.dataset}: test images", split.masks)


def make_figures(cfg: RunConfig, data: Dataset, archs: list[str], rc: pd.DataFrame, rs: pd.DataFrame) -> list[Path]:
    out_dir = cfg.figure_dir
    ev = data.test.subset(eval_indices(data.test, cfg.n_eval))
    paths = []
    grid, least = {}, {}
    rule = cfg.hull_rules[0]
    for arch in archs:
        logit_file = cfg.run_dir / arch / "logit_space.csv"
        if logit_file.exists():
            paths.append(figures.logit_space(pd.read_csv(logit_file), data.classes, out_dir / f"fig1_logit_space_{arch}.png",
                                             f"Logit space before and after distancing ({arch})"))
        maps = _maps(cfg, arch)
        hulls = torch.load(cfg.run_dir / arch / "hulls.pt", weights_only=False)
        logits = torch.load(cfg.run_dir / arch / "eval_logits.pt", weights_only=False)
        predicted = [data.classes[int(k)] for k in logits.argmax(1)]
        # Fig. 3 and 4 on the first evaluation image, for its own class.
        method = "integrated_gradients" if "integrated_gradients" in maps else cfg.methods[0]
        t = int(ev.labels[0])
        m = maps[method][:, t, 0]
        c = cons.consensus(maps[method][:, t, :1], cfg.consensus_rule, cfg.consensus_q, cfg.consensus_tau)[0]
        paths.append(figures.consensus_example(ev.images[0], m, c, cons.gad_map(m[0], c), cfg.alphas, method,
                                               out_dir / f"fig3_consensus_{arch}.png",
                                               f"{arch}, class {data.classes[t]}"))
        gm = "guided_backprop" if "guided_backprop" in maps else method
        g = cons.consensus(maps[gm][:, t, :1], cfg.consensus_rule, cfg.consensus_q, cfg.consensus_tau)[0]
        gad = cons.gad_map(maps[gm][0, t, 0], g)
        h = hulls[(gm, "frac_max")]["gad"][t, 0] if (gm, "frac_max") in hulls else hulls[(gm, rule)]["gad"][t, 0]
        paths.append(figures.hull_on_map(gad, h, out_dir / f"fig4_hull_{arch}.png", f"GAD {gm} map and its hull ({arch})"))
        # Fig. 5: first images of each class, maps for the predicted class.
        k = min(N_GRID // 2, cfg.n_eval // 2)
        idx = torch.cat([torch.arange(k), cfg.n_eval // 2 + torch.arange(k)])
        pred = logits.argmax(1)
        panel = {}
        for meth, mm in maps.items():
            orig = mm[0, pred[idx], idx]
            cm = cons.consensus(mm[:, :, idx], cfg.consensus_rule, cfg.consensus_q, cfg.consensus_tau)
            panel[meth] = (orig, cons.gad_map(mm[0, :, idx], cm)[pred[idx], torch.arange(len(idx))])
        grid[arch] = (ev.images[idx], panel, [predicted[i] for i in idx.tolist()])
        # Fig. 6: least activated images for their own class.
        own = logits.gather(1, ev.labels[:, None]).squeeze(1)
        pick = torch.cat([torch.nonzero(ev.labels == k).flatten()[own[ev.labels == k].argsort()[:N_LEAST]] for k in (0, 1)])
        least[arch] = (ev.images[pick], [data.classes[int(k)] for k in ev.labels[pick]],
                       {meth: (hulls[(meth, rule)]["orig"][ev.labels[pick], pick],
                               hulls[(meth, rule)]["gad"][ev.labels[pick], pick]) for meth in maps})
    paths.append(figures.original_vs_gad_grid(grid, out_dir / "fig5_original_vs_gad.png",
                                              f"Original vs GAD maps ({cfg.dataset}, predicted class)"))
    paths.append(figures.hull_comparison(least, out_dir / "fig6_hulls_least_activated.png",
                                         f"Least-activated images per class, hull rule {rule}"))
    paths.append(figures.rc_distribution(rc, out_dir / "rc_distribution.png", f"RC per method ({cfg.dataset})"))
    paths.append(figures.rs_distribution(rs, out_dir / "rs_distribution.png", f"RS per method and mask ({cfg.dataset})"))
    return paths
