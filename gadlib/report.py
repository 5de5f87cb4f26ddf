"""Builds every figure of a run from what notebooks 01-05 stored in the run folder."""

from __future__ import annotations

from pathlib import Path

import torch

from . import consensus as cons
from . import figures, runfiles
from .config import RunConfig
from .data import Dataset, eval_indices
from .runfiles import RunFiles
from .stages import RunResults

N_GRID = 4  # images per architecture in the original-vs-GAD grid (Fig. 5)
N_LEAST = 3  # least-activated images per class in the hull comparison (Fig. 6)


def _stored(path, key: str, stage: str, of) -> object:
    """A stored value, after checking it is the one the run's tables were made from."""
    value, st = runfiles.load(path)
    runfiles.check_key(path, st, key, stage, of)
    return value


def example_figure(cfg: RunConfig, data: Dataset) -> Path:
    idx = torch.arange(min(8, len(data.test)))
    split = data.test.subset(idx)
    names = [data.classes[int(k)] for k in split.labels]
    return figures.example_grid(
        split.images, names, cfg.figure_dir / "dataset_examples.png", f"{cfg.dataset}: test images", split.masks
    )


def make_figures(cfg: RunConfig, data: Dataset, results: RunResults) -> list[Path]:
    """The paper's figures from what notebooks 02-05 stored: the consensus of notebook 04 is
    reused, never recomputed, and every file is checked to belong to the tables' rows."""
    out_dir = cfg.figure_dir
    ev = data.test.subset(eval_indices(data.test, cfg.n_eval, cfg.seed))
    paths = []
    grid, least = {}, {}
    rule = cfg.hull_rules[0]
    for arch in results.archs:
        files = RunFiles(cfg.with_arch(arch))
        rc_st, rs_st, m_st = (results.stamps[arch][k] for k in ("rc", "rs", "models"))
        logits_df, logit_st = runfiles.read_csv(files.logit_space_csv)
        if logits_df is not None:
            runfiles.check_key(files.logit_space_csv, logit_st, m_st["key"], "models", files.models_csv)
            paths.append(
                figures.logit_space(
                    logits_df,
                    data.classes,
                    out_dir / f"fig1_logit_space_{arch}.png",
                    f"Logit space before and after distancing ({arch})",
                )
            )
        maps = {
            m: _stored(files.attributions(m), rc_st["inputs"]["attributions"][m], "attributions", files.rc_csv)
            for m in cfg.methods
        }
        consensus = _stored(files.consensus, rc_st["key"], "complexity", files.rc_csv)
        hulls = _stored(files.hulls, rc_st["key"], "complexity", files.rc_csv)
        logits = _stored(files.eval_logits, rs_st["key"], "sensitivity", files.rs_csv)
        predicted = [data.classes[int(k)] for k in logits.argmax(1)]
        # Fig. 3 and 4 on the first evaluation image, for its own class.
        method = "integrated_gradients" if "integrated_gradients" in maps else cfg.methods[0]
        t = int(ev.labels[0])
        m = maps[method][:, t, 0]
        c = consensus[method][t, 0]
        paths.append(
            figures.consensus_example(
                ev.images[0],
                m,
                c,
                cons.gad_map(m[0], c),
                cfg.alphas,
                method,
                out_dir / f"fig3_consensus_{arch}.png",
                f"{arch}, class {data.classes[t]}",
            )
        )
        gm = "guided_backprop" if "guided_backprop" in maps else method
        gad = cons.gad_map(maps[gm][0, t, 0], consensus[gm][t, 0])
        h = hulls[(gm, "frac_max")]["gad"][t, 0] if (gm, "frac_max") in hulls else hulls[(gm, rule)]["gad"][t, 0]
        paths.append(
            figures.hull_on_map(gad, h, out_dir / f"fig4_hull_{arch}.png", f"GAD {gm} map and its hull ({arch})")
        )
        # Fig. 5: first images of each class, maps for the predicted class.
        k = min(N_GRID // 2, cfg.n_eval // 2)
        idx = torch.cat([torch.arange(k), cfg.n_eval // 2 + torch.arange(k)])
        pred = logits.argmax(1)
        panel = {}
        for meth, mm in maps.items():
            orig = mm[0, pred[idx], idx]
            panel[meth] = (orig, cons.gad_map(orig, consensus[meth][pred[idx], idx]))
        grid[arch] = (ev.images[idx], panel, [predicted[i] for i in idx.tolist()])
        # Fig. 6: least activated images for their own class.
        own = logits.gather(1, ev.labels[:, None]).squeeze(1)
        pick = torch.cat(
            [torch.nonzero(ev.labels == k).flatten()[own[ev.labels == k].argsort()[:N_LEAST]] for k in (0, 1)]
        )
        least[arch] = (
            ev.images[pick],
            [data.classes[int(k)] for k in ev.labels[pick]],
            {
                meth: (
                    hulls[(meth, rule)]["orig"][ev.labels[pick], pick],
                    hulls[(meth, rule)]["gad"][ev.labels[pick], pick],
                )
                for meth in maps
            },
        )
    paths.append(
        figures.original_vs_gad_grid(
            grid, out_dir / "fig5_original_vs_gad.png", f"Original vs GAD maps ({cfg.dataset}, predicted class)"
        )
    )
    paths.append(
        figures.hull_comparison(
            least, out_dir / "fig6_hulls_least_activated.png", f"Least-activated images per class, hull rule {rule}"
        )
    )
    paths.append(figures.rc_distribution(results.rc, out_dir / "rc_distribution.png", f"RC per method ({cfg.dataset})"))
    paths.append(
        figures.rs_distribution(results.rs, out_dir / "rs_distribution.png", f"RS per method and mask ({cfg.dataset})")
    )
    return paths
