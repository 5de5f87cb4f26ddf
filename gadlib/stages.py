"""One function per notebook stage. Notebooks call these and show what they return; each stage
reads what the one before it stored in the run folder and caches its own output there."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from . import consensus as cons
from . import metrics
from .cache import cached, load_if_current, save_atomic
from .config import METHOD_SHORT, RunConfig
from .data import Dataset, eval_indices, normalize
from . import engine
from .engine import attribution_maps
from .hulls import hull_masks
from .models import build_model, load_classifier, pick_device, predict_logits
from .training import accuracy, distanced_targets, support_report, train_classifier, train_support

CHANCE_MARGIN = 0.15  # below 0.5 + this, the classifier is not clearly better than chance


# ---------------------------------------------------------------- 01 data
def data_summary(data: Dataset) -> pd.DataFrame:
    rows = []
    for split_name in ("train", "test"):
        split = getattr(data, split_name)
        for k, c in enumerate(data.classes):
            rows.append({"split": split_name, "class": c, "images": int((split.labels == k).sum())})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- 02 models
@dataclass
class ModelFamily:
    """The original classifier (alpha = 0) and its supports, in the order of cfg.support_alphas."""
    original: nn.Module
    supports: list[nn.Module]
    test_accuracy: float
    report: pd.DataFrame  # one row per support

    @property
    def all(self) -> list[nn.Module]:
        return [self.original, *self.supports]


def _state(model: nn.Module) -> dict:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def original_classifier(cfg: RunConfig, data: Dataset, device: torch.device) -> tuple[nn.Module, float]:
    """Load the user's checkpoint or train one here (cached); returns it with its test accuracy."""
    if cfg.checkpoint:
        model = load_classifier(cfg.checkpoint, cfg.arch, cfg.image_size)
    else:
        model = build_model(cfg.arch, 2, cfg.image_size)
        key = cfg.key(*RunConfig.MODEL_FIELDS)

        def train():
            torch.manual_seed(cfg.seed)
            m = build_model(cfg.arch, 2, cfg.image_size, pretrained=cfg.pretrained).to(device)
            train_classifier(m, data.train, cfg.train_epochs, cfg.lr, cfg.batch_size, cfg.seed)
            return _state(m)

        model.load_state_dict(cached(cfg.arch_dir / "models" / "original.pt", key, train))
    model = model.to(device).eval()
    acc = accuracy(predict_logits(model, data.test.images), data.test.labels)
    if acc < 0.5 + CHANCE_MARGIN:
        warnings.warn(
            f"THE ORIGINAL {cfg.arch} IS NOT CLEARLY BETTER THAN CHANCE: test accuracy {acc:.3f}. "
            "Its explanations explain little; train longer (train_epochs) or give a checkpoint.",
            stacklevel=2,
        )
    return model, acc


def model_family(cfg: RunConfig, data: Dataset) -> ModelFamily:
    """Original classifier plus one support regression per alpha (METHOD.md steps 1-2)."""
    device = pick_device(cfg.device)
    original, acc = original_classifier(cfg, data, device)
    test_logits = predict_logits(original, data.test.images)
    base_key = cfg.key(*RunConfig.SUPPORT_FIELDS, extra={"original": _fingerprint(original)})
    train_logits = []  # predicted only if a support has to be trained (not when all are cached)
    supports, rows = [], []
    for i, (a1, a2) in enumerate(tqdm(cfg.support_alphas, desc="supports", leave=False)):

        def train(a1=a1, a2=a2, i=i):
            if not train_logits:
                train_logits.append(predict_logits(original, data.train.images))
            targets = distanced_targets(train_logits[0], data.train.labels, a1, a2)
            torch.manual_seed(cfg.seed + i + 1)
            s, history = train_support(original, data.train, targets, cfg.support_epochs, cfg.support_lr,
                                       cfg.batch_size, cfg.seed + i + 1, desc=f"support alpha={a1:g}/{a2:g}")
            return {"state": _state(s), "train_mse": history}

        stored = cached(cfg.arch_dir / "models" / f"support_{a1:g}_{a2:g}.pt", f"{base_key}-{a1}-{a2}", train)
        support = build_model(cfg.arch, 2, cfg.image_size).to(device)
        support.load_state_dict(stored["state"])
        support.eval()
        supports.append(support)
        row = support_report(test_logits, predict_logits(support, data.test.images), data.test.labels, a1, a2)
        row["train_mse_last_epoch"] = stored["train_mse"][-1]
        rows.append(row)
    report = pd.DataFrame(rows)
    # One row per model, the original first: what 06 reports as the classifiers' quality.
    summary = pd.concat([pd.DataFrame([{"alpha_c1": 0.0, "alpha_c2": 0.0, "accuracy": acc}]), report], ignore_index=True)
    summary.assign(dataset=cfg.dataset, arch=cfg.arch).to_csv(cfg.arch_dir / "models.csv", index=False)
    return ModelFamily(original, supports, acc, report)


def _fingerprint(model: nn.Module) -> float:
    """A cheap number that changes when the weights change (part of the supports' cache key)."""
    return float(sum(p.double().sum() for p in model.parameters()))


def logit_space(cfg: RunConfig, data: Dataset, family: ModelFamily) -> pd.DataFrame:
    """Training logits of the original, the distanced targets and each support's outputs (Fig. 1)."""
    frames = []
    z = predict_logits(family.original, data.train.images)
    frames.append(pd.DataFrame({"z1": z[:, 0], "z2": z[:, 1], "what": "original", "alpha": 0.0}))
    for (a1, a2), support in zip(cfg.support_alphas, family.supports):
        y = distanced_targets(z, data.train.labels, a1, a2)
        s = predict_logits(support, data.train.images)
        frames.append(pd.DataFrame({"z1": y[:, 0], "z2": y[:, 1], "what": "target", "alpha": a1}))
        frames.append(pd.DataFrame({"z1": s[:, 0], "z2": s[:, 1], "what": "support", "alpha": a1}))
    out = pd.concat(frames, ignore_index=True)
    out["label"] = [data.classes[int(k)] for k in data.train.labels.repeat(len(frames))]
    out.to_csv(cfg.arch_dir / "logit_space.csv", index=False)
    return out


# ---------------------------------------------------------------- 03 attributions
def eval_images(cfg: RunConfig, data: Dataset):
    idx = eval_indices(data.test, cfg.n_eval)
    return idx, data.test.subset(idx)


def attributions(cfg: RunConfig, data: Dataset, family: ModelFamily) -> dict[str, torch.Tensor]:
    """{method: (models, 2 classes, N, H, W)} for the evaluation images, stored once per method."""
    _, ev = eval_images(cfg, data)
    x = normalize(ev.images)
    key = cfg.key(*RunConfig.ATTR_FIELDS, extra={"models": [_fingerprint(m) for m in family.all]})
    out, todo = {}, []
    for method in cfg.methods:
        value = load_if_current(cfg.arch_dir / "attributions" / f"{method}.pt", key)
        if value is None:
            todo.append(method)
        else:
            out[method] = value
    if todo:
        fresh = attribution_maps(family.all, x, todo, ig_steps=cfg.ig_steps, batch_size=cfg.batch_size,
                                 internal_batch=cfg.ig_internal_batch, device=pick_device(cfg.device),
                                 precision=cfg.precision)
        print(f"computed {', '.join(todo)}; precision per model (original first): {engine.last_precision}")
        for method, maps in fresh.items():
            save_atomic({"_cache_key": key, "value": maps}, cfg.arch_dir / "attributions" / f"{method}.pt")
            out[method] = maps
    return {m: out[m] for m in cfg.methods}


# ---------------------------------------------------------------- 04 complexity
def complexity(cfg: RunConfig, data: Dataset, maps: dict[str, torch.Tensor]):
    """Consensus, GAD map, matched-area baseline and their hulls under every hull rule.

    Returns (per-image RC rows, ground-truth rows or None, hulls) and stores the hulls for 05."""
    _, ev = eval_images(cfg, data)
    rc_rows, gt_rows, hulls = [], [], {}
    for method, m in tqdm(maps.items(), desc="complexity", leave=False):
        c = cons.consensus(m, cfg.consensus_rule, cfg.consensus_q, cfg.consensus_tau)  # (2, N, H, W)
        views = {"orig": m[0], "gad": cons.gad_map(m[0], c), "base": cons.matched_area_map(m[0], c)}
        for rule in cfg.hull_rules:
            h = {k: hull_masks(cons.important(v, rule, cfg.hull_q, cfg.hull_tau)) for k, v in views.items()}
            hulls[(method, rule)] = h
            rc = metrics.rc(h["gad"], h["orig"])
            rc_base = metrics.rc(h["base"], h["orig"])
            for t in (0, 1):
                rc_rows.append(pd.DataFrame({
                    "method": method, "hull_rule": rule, "target": t + 1, "image": range(len(ev)),
                    "label": (ev.labels + 1).numpy(), "rc": rc[t].numpy(), "rc_base": rc_base[t].numpy(),
                    "area_orig": metrics.area(h["orig"][t]).numpy(), "area_gad": metrics.area(h["gad"][t]).numpy(),
                    "consensus_share": (metrics.area(c[t]) / c[t][0].numel()).numpy(),
                }))
                if ev.masks is not None:
                    for kind, v in views.items():
                        gt_rows.append(pd.DataFrame({
                            "method": method, "hull_rule": rule, "target": t + 1, "map": kind,
                            "image": range(len(ev)), "own_class": (ev.labels == t).numpy(),
                            "mass_inside": metrics.mass_inside(v[t], ev.masks).numpy(),
                            "pointing_hit": metrics.pointing_hit(v[t], ev.masks).numpy(),
                            "hull_iou": metrics.iou(h[kind][t], ev.masks).numpy(),
                        }))
    rc_df = pd.concat(rc_rows, ignore_index=True).assign(dataset=cfg.dataset, arch=cfg.arch)
    gt_df = pd.concat(gt_rows, ignore_index=True).assign(dataset=cfg.dataset, arch=cfg.arch) if gt_rows else None
    save_atomic(hulls, cfg.arch_dir / "hulls.pt")
    rc_df.to_csv(cfg.arch_dir / "rc.csv", index=False)
    if gt_df is not None:
        gt_df.to_csv(cfg.arch_dir / "ground_truth.csv", index=False)
    return rc_df, gt_df, hulls


def ground_truth_summary(gt: pd.DataFrame) -> pd.DataFrame:
    """Localisation against the object mask, for the image's own class: attribution mass inside
    the object and pointing-game hits (map scores), and hull IoU with the object under each hull
    rule; columns orig / gad / base (the matched-area baseline)."""
    own = gt[gt["own_class"]].assign(method=lambda d: pd.Categorical(d["method"].map(METHOD_SHORT),
                                                                      list(METHOD_SHORT.values())))
    first_rule = own[own["hull_rule"] == own["hull_rule"].iloc[0]]  # map scores do not depend on it
    maps = first_rule.groupby(["arch", "method", "map"], observed=True)[["mass_inside", "pointing_hit"]].mean()
    maps = maps.unstack("map")
    maps.columns = [f"{metric} {kind}" for metric, kind in maps.columns]
    hulls = own.groupby(["arch", "method", "hull_rule", "map"], observed=True)["hull_iou"].mean()
    hulls = hulls.unstack(["hull_rule", "map"])
    hulls.columns = [f"hull IoU {rule} {kind}" for rule, kind in hulls.columns]
    table = pd.concat([maps, hulls], axis=1)
    order = {"orig": 0, "gad": 1, "base": 2}
    return table[sorted(table.columns, key=lambda c: (c.rsplit(" ", 1)[0], order[c.rsplit(" ", 1)[1]]))]


# ---------------------------------------------------------------- 05 sensitivity
def sensitivity(cfg: RunConfig, data: Dataset, family: ModelFamily) -> pd.DataFrame:
    """RS of the GAD hull, the supplementary region (orig hull minus GAD hull) and the
    matched-area baseline's hull, for each method, hull rule and target class."""
    hulls = torch.load(cfg.arch_dir / "hulls.pt", weights_only=False)
    _, ev = eval_images(cfg, data)
    x = normalize(ev.images)
    save_atomic(predict_logits(family.original, x), cfg.arch_dir / "eval_logits.pt")  # for figure 6
    rows = []
    for (method, rule), h in tqdm(hulls.items(), desc="sensitivity", leave=False):
        masks = {"gad": h["gad"], "sup": h["orig"] & ~h["gad"], "base": h["base"]}
        for t in (0, 1):
            stacked = torch.stack([m[t] for m in masks.values()])
            values = metrics.rs(family.original, x, stacked, t, cfg.occlusion_fill, batch_size=cfg.batch_size * 4)
            for kind, v in zip(masks, values):
                rows.append(pd.DataFrame({
                    "method": method, "hull_rule": rule, "target": t + 1, "mask": kind,
                    "image": range(len(ev)), "rs": v.numpy(),
                }))
    df = pd.concat(rows, ignore_index=True).assign(dataset=cfg.dataset, arch=cfg.arch)
    df.to_csv(cfg.arch_dir / "rs.csv", index=False)
    return df


# ---------------------------------------------------------------- 06 tables
def run_results(cfg: RunConfig, archs: list[str] | None = None):
    """Read every architecture's RC and RS rows in the run folder (those listed, if given)."""
    found = sorted(p.parent.name for p in cfg.run_dir.glob("*/rs.csv"))
    archs = [a for a in (archs or found) if a in found]
    if not archs:
        raise FileNotFoundError(f"no finished architecture in {cfg.run_dir}: run notebooks 02-05 first")
    rc = pd.concat([pd.read_csv(cfg.run_dir / a / "rc.csv") for a in archs], ignore_index=True)
    rs = pd.concat([pd.read_csv(cfg.run_dir / a / "rs.csv") for a in archs], ignore_index=True)
    models = pd.concat([pd.read_csv(cfg.run_dir / a / "models.csv") for a in archs], ignore_index=True)
    gt_files = [cfg.run_dir / a / "ground_truth.csv" for a in archs]
    gt = pd.concat([pd.read_csv(f) for f in gt_files if f.exists()], ignore_index=True) if any(f.exists() for f in gt_files) else None
    return archs, rc, rs, gt, models


def write_tables(cfg: RunConfig, rc: pd.DataFrame, rs: pd.DataFrame, gt: pd.DataFrame | None,
                 models: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Table 1 and Table 2 (and our extra tables) per hull rule, as CSV and Markdown."""
    out_dir = cfg.figure_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    cols = ["dataset", "arch", "alpha_c1", "alpha_c2", "accuracy", "mse", "spearman_logit1", "spearman_logit2"]
    tables = {"models": models.reindex(columns=cols).set_index(["dataset", "arch", "alpha_c1", "alpha_c2"])}
    for rule in rc["hull_rule"].unique():
        rc_r, rs_r = rc[rc["hull_rule"] == rule], rs[rs["hull_rule"] == rule]
        tables[f"table1_{rule}"] = metrics.table1(rc_r)
        tables[f"table2_{rule}"] = metrics.table2(rs_r)
        tables[f"table2_with_baseline_{rule}"] = metrics.table2(rs_r, ("sup", "gad", "base"))
        tables[f"direction_{rule}"] = metrics.direction_summary(rc_r, rs_r).set_index(["dataset", "arch", "method"])
    if gt is not None:
        tables["ground_truth"] = ground_truth_summary(gt)
    for name, t in tables.items():
        t.to_csv(out_dir / f"{name}.csv")
        (out_dir / f"{name}.md").write_text(metrics.to_markdown(t) + "\n")
    return tables
