"""Notebook 06, tables and figures of a run: every architecture's rows read back after checking
they were made under the run's settings, Table 1 and 2 (and our extra tables) written with
their stamp, and every figure built from what notebooks 01-05 stored in the run folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from . import consensus as cons
from . import figures, metrics, runfiles
from .config import RunConfig
from .data import Dataset, eval_indices
from .errors import GADInputError
from .hulls import REGIONS_VERSION
from .runfiles import RunFiles
from .tables import (
    HULL_OVERLAP,
    baseline_check,
    direction_summary,
    ground_truth_summary,
    model_table,
    table1,
    table2,
    to_markdown,
)


# ---------------------------------------------------------------- tables
@dataclass
class RunResults:
    """Every architecture's rows of one run, all made under the current settings."""

    archs: list[str]
    rc: pd.DataFrame
    rs: pd.DataFrame
    ground_truth: pd.DataFrame | None
    models: pd.DataFrame
    stamps: dict[str, dict[str, dict]]  # {arch: {"rc" | "rs" | "models": stamp}}


def run_results(cfg: RunConfig, data: Dataset | None = None) -> RunResults:
    """Read every finished architecture of the run folder, after checking that each file was
    made under this run's settings and that the files of one architecture belong together; with
    `data` (the run's, as notebook 06 has it), also that each architecture's maps were made of its
    evaluation images: an architecture left from a run on other images (the folder's files
    changed since, at the same paths) is refused, not tabled beside the others."""
    files = RunFiles(cfg)
    archs = files.finished_archs()
    if not archs:
        raise GADInputError(f"no finished architecture in {cfg.run_dir}: run notebooks 02-05 first")
    if data is not None:
        from .stages import attribution_stamp, eval_images

        images = runfiles.split_fingerprint(eval_images(cfg, data)[1])
    parts = {"rc": [], "rs": [], "models": [], "gt": []}
    stamps = {}
    for arch in archs:
        fa, ca = files.arch(arch), cfg.with_arch(arch)
        rs, rs_st = runfiles.read_csv(fa.rs_csv)
        runfiles.check(fa.rs_csv, rs_st, runfiles.stamp("sensitivity", ca, runfiles.SENSITIVITY_FIELDS), partial=True)
        rc, rc_st = runfiles.read_csv(fa.rc_csv)
        runfiles.check_key(fa.rc_csv, rc_st, rs_st["inputs"]["complexity"], "complexity", fa.rs_csv)
        regions = runfiles.stamp("complexity", ca, runfiles.COMPLEXITY_FIELDS, definition=REGIONS_VERSION)
        runfiles.check(fa.rc_csv, rc_st, regions, partial=True)  # made before a region was added: rerun 04
        made = rc_st["inputs"]
        if data is not None and any(
            attribution_stamp(ca, made["models"], m, made["precision"][m], images)["key"] != key
            for m, key in made["attributions"].items()
        ):
            raise GADInputError(
                f"{fa.rc_csv} was made from the maps of other evaluation images than this run's data "
                f"(a run before the images in {cfg.data_dir} changed): run notebooks 02-05 for {arch} again "
                f"(make reproduce ARCH={arch} with this run's settings), or remove {fa.rc_csv.parent}"
            )
        models, m_st = runfiles.read_csv(fa.models_csv)
        runfiles.check(
            fa.models_csv,
            m_st,
            runfiles.stamp("models", ca, runfiles.FAMILY_FIELDS, models=rc_st["inputs"]["models"]),
            partial=True,
        )
        gt, gt_st = runfiles.read_csv(fa.ground_truth_csv)
        if gt is not None:
            runfiles.check_key(fa.ground_truth_csv, gt_st, rc_st["key"], "complexity", fa.rc_csv)
            parts["gt"].append(gt)
        parts["rc"].append(rc)
        parts["rs"].append(rs)
        parts["models"].append(models)
        stamps[arch] = {"rc": rc_st, "rs": rs_st, "models": m_st}
    return RunResults(
        archs,
        pd.concat(parts["rc"], ignore_index=True),
        pd.concat(parts["rs"], ignore_index=True),
        pd.concat(parts["gt"], ignore_index=True) if parts["gt"] else None,
        pd.concat(parts["models"], ignore_index=True),
        stamps,
    )


def with_hull_overlap(cfg: RunConfig, results: RunResults) -> pd.DataFrame:
    """The run's RC rows with, per method, hull rule, target and image, the IoU of GAD's hull and
    the hull-matched baseline's (`tables.HULL_OVERLAP`; NaN where both are empty), from the hulls
    stored with the rows (stamp-checked): near 1, the two regions are nearly the same pixels,
    whatever their RS. Only notebook 06's tables read the hulls for it (at the paper's size they
    are large)."""
    keys = ["arch", "method", "hull_rule", "target", "image"]
    parts = []
    for arch in results.archs:
        fa = RunFiles(cfg.with_arch(arch))
        hulls = _stored(fa.hulls, results.stamps[arch]["rc"]["key"], "complexity", fa.rc_csv)
        for (method, rule), kinds in hulls.items():
            iou = metrics.iou(kinds["gad"], kinds["base_hull"])  # (target, image), as stored
            for t in range(iou.shape[0]):
                parts.append(
                    pd.DataFrame(
                        {"arch": arch, "method": method, "hull_rule": rule, "target": t + 1}
                        | {"image": range(iou.shape[1]), HULL_OVERLAP: iou[t].numpy()}
                    )
                )
    rc = results.rc.merge(pd.concat(parts), on=keys, how="left", validate="one_to_one", indicator=True)
    if (rc.pop("_merge") != "both").any():
        raise GADInputError(
            f"{RunFiles(cfg).run_dir}: the stored hulls are not of the RC rows' images: rerun notebook 04"
        )
    return rc


TABLE_FIELDS = tuple(f for f in runfiles.SENSITIVITY_FIELDS if f != "arch") + ("bootstrap",)


def tables_stamp(cfg: RunConfig, results: RunResults) -> dict:
    """The stamp of the tables made from `results`: the settings and each architecture's rows."""
    return runfiles.stamp("tables", cfg, TABLE_FIELDS, **{a: s["rs"]["key"] for a, s in results.stamps.items()})


def write_tables(cfg: RunConfig, results: RunResults) -> dict[str, pd.DataFrame]:
    """Table 1 and Table 2 (and our extra tables) per hull rule, as CSV and Markdown, stamped
    with the settings and the keys of every architecture's rows."""
    st = tables_stamp(cfg, results)
    out_dir = RunFiles(cfg).figure_dir
    for old in [
        *out_dir.glob("table*_*.*"),
        *out_dir.glob("direction_*.*"),
        *out_dir.glob("baseline_check_*.*"),
        *out_dir.glob("ground_truth.*"),
        # make paper-comparison's, unless it was made from the tables this run writes again
        *[p for p in out_dir.glob("paper_comparison.md") if runfiles.read_key(p.read_text()) != st["key"]],
        *figure_files(out_dir),
    ]:
        # tables and figures of an earlier run of this folder (other hull rules, another
        # architecture) must not linger beside this run's RUN.json; make_figures draws them again
        old.unlink()
    rc, rs = with_hull_overlap(cfg, results), results.rs
    tables = {"models": model_table(results.models)}
    for rule in rc["hull_rule"].unique():
        rc_r, rs_r = rc[rc["hull_rule"] == rule], rs[rs["hull_rule"] == rule]
        tables[f"table1_{rule}"] = table1(rc_r)
        tables[f"table2_{rule}"] = table2(rs_r)
        tables[f"table2_with_baseline_{rule}"] = table2(rs_r, cons.RS_REGIONS)
        tables[f"direction_{rule}"] = direction_summary(rc_r, rs_r, cfg.bootstrap, cfg.seed).set_index(
            ["dataset", "arch", "method"]
        )
        tables[f"baseline_check_{rule}"] = baseline_check(rc_r, rs_r, cfg.bootstrap, cfg.seed)
    if results.ground_truth is not None:
        tables["ground_truth"] = ground_truth_summary(results.ground_truth)
    for name, t in tables.items():
        runfiles.write_csv(t, out_dir / f"{name}.csv", st, index=True)
        runfiles.write_text(to_markdown(t) + "\n", out_dir / f"{name}.md", st)
    return tables


# ---------------------------------------------------------------- figures
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


def logit_space_figure(cfg: RunConfig, classes: list[str], logits: pd.DataFrame) -> Path:
    """Figure 1 for cfg.arch, from `stages.logit_space`'s frame (notebook 02) or its CSV (06)."""
    title = f"Logit space before and after distancing ({cfg.arch})"
    return figures.logit_space(logits, classes, RunFiles(cfg).logit_space_figure, title)


def figure_files(out_dir: Path) -> list[Path]:
    """The figures make_figures draws in `out_dir`, of any architecture."""
    return [*out_dir.glob("fig[1-6]_*.png"), *out_dir.glob("r[cs]_distribution.png")]


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
            paths.append(logit_space_figure(files.cfg, data.classes, logits_df))
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
        hull_rule = "frac_max" if (gm, "frac_max") in hulls else rule  # the paper's Fig. 4 uses 10% of the max
        h = hulls[(gm, hull_rule)]["gad"][t, 0]
        title = f"GAD {gm} map and its hull, rule {hull_rule} ({arch})"
        paths.append(figures.hull_on_map(gad, h, out_dir / f"fig4_hull_{arch}.png", title))
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
