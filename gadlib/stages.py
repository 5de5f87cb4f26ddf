"""One function per notebook stage. Notebooks call these and show what they return; each stage
reads what the one before it stored in the run folder and caches its own output there. Every
path and cache key comes from `gadlib.runfiles`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from . import consensus as cons
from . import metrics, notices, precision, runfiles
from .attributions import attribution_maps
from .config import SETTINGS, RunConfig, unknown_settings
from .cpu_memory import keep_freed_memory, on_the_cpu
from .data import Dataset, eval_indices, normalize
from .errors import GADInputError
from .gad import GAD
from .hulls import REGIONS_VERSION, region_hulls
from .models import build_model, describe_device, load_checkpoint, pick_device, predict_logits
from .runfiles import RunFiles
from .seeding import seeded
from .training import (
    TARGETS_VERSION,
    distanced_targets,
    family_report,
    train_classifier,
    uses_bf16,
    warn_if_order_lost,
)

CHANCE_MARGIN = 0.15  # below 0.5 + this, the classifier is not clearly better than chance


# ---------------------------------------------------------------- 01 data
def setup(namespace: dict) -> tuple[RunConfig, Dataset]:
    """Every notebook's setup cell: `cfg, data = stages.setup(globals())`. The settings are the
    notebook's parameters (its globals named like a RunConfig field, so a later cell that
    defines, say, `seed` and runs setup again changes the run; None takes the profile's value)
    plus the `extra` dict, and the dataset is loaded (or read from the run folder)."""
    from .data import load_dataset

    fields = set(SETTINGS)
    # Papermill injects a -p name the parameters cell lacks as a variable of its own, with a
    # warning that also comes for settings outside the cell (runs_dir), which do apply: a name of
    # its injected cell that is no setting (a misspelt one, say) would be ignored, so it stops here.
    if stray := sorted(injected_names(namespace) - fields - {"extra"}):
        raise GADInputError(unknown_settings(stray))
    cfg = RunConfig.from_params({k: v for k, v in namespace.items() if k in fields or k == "extra"})
    if on_the_cpu(cfg.device):
        keep_freed_memory()  # large tensors reuse freed pages instead of faulting fresh ones in
    print(f"run folder: {cfg.run_dir}  profile: {cfg.profile}  arch: {cfg.arch}")
    return cfg, load_dataset(cfg)


def injected_names(namespace: dict) -> set[str]:
    """The names Papermill's injected cell ("# Parameters", in IPython's input history `In`)
    assigns; none outside a Papermill run."""
    import ast

    cells = namespace.get("In")
    sources = (
        [c for c in cells if isinstance(c, str) and c.startswith("# Parameters")] if isinstance(cells, list) else []
    )
    try:
        trees = [ast.parse(source) for source in sources]
    except SyntaxError:
        return set()
    return {t.id for tree in trees for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
            if isinstance(t, ast.Name)}  # fmt: skip


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
    fingerprints: list[str]  # SHA-256 of each model's weights, the original first
    test_accuracy: float
    report: pd.DataFrame  # one row per model, the original first
    # the images the original was trained on (None: synthetic data, or a checkpoint not of a run)
    train_files: list[str] | None
    stamp: dict  # the stamp of models.csv: these models under these settings

    @property
    def all(self) -> list[nn.Module]:
        return [self.original, *self.supports]


def _state(model: nn.Module) -> dict:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def _warn_if_chance(cfg: RunConfig, acc: float) -> None:
    if cfg.checkpoint and acc < 0.5 - CHANCE_MARGIN:  # far below chance: the outputs name the classes the other way
        notices.warn(
            f"THE GIVEN CLASSIFIER IS WRONG MORE OFTEN THAN RIGHT: test accuracy {acc:.3f}. Its outputs "
            f"are likely in the other class order than {cfg.classes or 'the sorted folder names'}: "
            "give classes in the order of its outputs."
        )
    elif acc < 0.5 + CHANCE_MARGIN:
        fix = "check that it was trained for these classes" if cfg.checkpoint else "train longer (train_epochs)"
        notices.warn(
            f"THE ORIGINAL {cfg.arch} IS NOT CLEARLY BETTER THAN CHANCE: test accuracy {acc:.3f}. "
            f"Its explanations explain little; {fix} or give another checkpoint."
        )


def _warn_if_slow_bf16(cfg: RunConfig, device: torch.device) -> None:
    if cfg.train_precision == "bf16" and not precision.bf16_available(device):
        notices.warn(
            f"train_precision=bf16 on a device without native bf16 ({describe_device(device)}): "
            "training is likely slower than in fp32 here; auto trains in fp32 on such a CPU."
        )


def trained_on(cfg: RunConfig) -> dict:
    """What a training stamp adds to the settings: `auto` trains under bf16 autocast on CUDA and in
    fp32 on the CPU (`uses_bf16`), so a model trained on a GPU says so, and a CPU run of the same
    folder (a copied folder, a mixed sweep cluster) trains its own; CPU keys stay as they were."""
    return {"autocast": "bf16"} if cfg.train_precision == "auto" and uses_bf16(pick_device(cfg.device)) else {}


def original_classifier(
    cfg: RunConfig, data: Dataset, device: torch.device, train_split: str
) -> tuple[nn.Module, dict]:
    """Load the user's checkpoint or train one here (cached). Returns the model and its record:
    {"fingerprint", "train_files"}."""
    files = RunFiles(cfg)
    if cfg.checkpoint:
        model, its_run = load_checkpoint(cfg.checkpoint, cfg.arch, cfg.image_size)
        record = {
            "fingerprint": runfiles.fingerprint(model),
            "train_files": _checkpoint_train_files(cfg, data, its_run),
        }
    else:
        with seeded(cfg.seed):  # a shell for the kept weights, whose initial ones draw nothing of the caller's
            model = build_model(cfg.arch, 2, cfg.image_size)
        st = runfiles.stamp("original", cfg, runfiles.MODEL_FIELDS, train_split=train_split, **trained_on(cfg))

        def train():
            with seeded(cfg.seed, device):  # the weights' initialisation and dropout
                m = build_model(cfg.arch, 2, cfg.image_size, pretrained=cfg.pretrained).to(device)
                history = train_classifier(
                    m, data.train, cfg.train_epochs, cfg.lr, cfg.batch_size, cfg.seed, precision=cfg.train_precision
                )
            m = m.cpu()
            return {
                "state": _state(m),
                "fingerprint": runfiles.fingerprint(m),
                "train_files": data.train.paths,
                "train_loss": history,
            }

        record = runfiles.cached(files.original, st, train)
        model.load_state_dict(record["state"])
    return model.to(device).eval(), record


def _checkpoint_train_files(cfg: RunConfig, data: Dataset, its_run: dict | None) -> list[str] | None:
    """The files a run of this pipeline trained the checkpoint on, where it is such a run's
    models/original.pt (`load_checkpoint`'s second value; None for any other checkpoint), with a
    warning where this run's test images include some of them (its run drew another split, or
    the folder changed since), so that accuracy and maps on those images are not held out."""
    train_files = (its_run or {}).get("train_files")
    if not train_files or data.test.paths is None:
        return train_files
    # By path; by place under data_dir where the folder the run had is no longer there (moved, or
    # another machine): a pack elsewhere with the same names is not taken for it
    made_under = its_run.get("data_dir")
    moved = made_under and cfg.data_dir and made_under != cfg.data_dir and not Path(made_under).exists()

    def places(paths, root) -> set[str]:
        root = Path(root) if moved else None
        return {str(Path(p).relative_to(root)) if root and Path(p).is_relative_to(root) else str(p) for p in paths}

    seen = places(train_files, made_under) & places(data.test.paths, cfg.data_dir)
    if seen:
        notices.warn(
            f"{len(seen)} of this run's {len(data.test.paths)} test images are images the checkpoint "
            f"{cfg.checkpoint} was trained on (its run drew another split, or the folder changed since): "
            "the accuracy, maps and tables of those images are not held out; give this run that run's dataset, "
            "data_dir, classes, images_per_class and seed"
        )
    return train_files


def support_stamp(
    cfg: RunConfig, alpha: tuple[float, float], original: str, train_split: str, position: int, stage: str = "support"
) -> dict:
    """The stamp of the support for `alpha` of the original with fingerprint `original`, trained
    at `position` among its run's supports, which sets its seed (`train_supports`): the support
    for alpha = 4 of alphas [2, 4] is not the one of alphas [4]. `stage` "control" for notebook
    07's alpha = 0 supports."""
    return runfiles.stamp(
        stage,
        cfg,
        runfiles.SUPPORT_FIELDS,
        alpha=list(alpha),
        original=original,
        train_split=train_split,
        targets=TARGETS_VERSION,
        position=position,
        **trained_on(cfg),
    )


def model_family(cfg: RunConfig, data: Dataset) -> ModelFamily:
    """Original classifier plus one support regression per alpha (METHOD.md steps 1-2), with the
    report of their quality on the test split (computed once, then read from models.csv)."""
    files = RunFiles(cfg)
    device = pick_device(cfg.device)
    _warn_if_slow_bf16(cfg, device)
    train_split = runfiles.split_fingerprint(data.train)
    original, record = original_classifier(cfg, data, device, train_split)
    stamps = [support_stamp(cfg, a, record["fingerprint"], train_split, i) for i, a in enumerate(cfg.support_alphas)]
    supports, stored_supports = train_supports(
        cfg, data, original, cfg.support_alphas, [files.support(a1, a2) for a1, a2 in cfg.support_alphas], stamps
    )
    fingerprints = [record["fingerprint"]] + [s["fingerprint"] for s in stored_supports]
    st = runfiles.stamp(
        "models", cfg, runfiles.FAMILY_FIELDS, models=fingerprints, test_split=runfiles.split_fingerprint(data.test)
    )
    report, stored_st = runfiles.read_csv(files.models_csv)
    if stored_st is None or stored_st["key"] != st["key"]:
        report = family_report(original, supports, cfg.support_alphas, data.test.images, data.test.labels)
        last = [s["train_mse"][-1] if s["train_mse"] else float("nan") for s in stored_supports]
        report = report.assign(train_mse_last_epoch=[float("nan"), *last], dataset=cfg.dataset, arch=cfg.arch)
        runfiles.write_csv(report, files.models_csv, st)
    acc = float(report["accuracy"].iloc[0])
    _warn_if_chance(cfg, acc)
    warn_if_order_lost(report, f"OF {cfg.arch}")
    return ModelFamily(original, supports, fingerprints, acc, report, record.get("train_files"), st)


def train_supports(
    cfg: RunConfig,
    data: Dataset,
    original: nn.Module,
    alphas: list[tuple[float, float]],
    paths: list,
    stamps: list[dict],
    what: str = "support",
) -> tuple[list[nn.Module], list[dict]]:
    """One support per (alpha for class 1, alpha for class 2), trained by `GAD.fit` (seed
    cfg.seed + its position + 1, in cfg.support_mode) or read back from its run file. Returns
    the models (eval mode, on the original's device) and their stored records."""
    records = []

    def keep(i, train):
        def record():
            s, history = train()
            s = s.cpu()
            return {"state": _state(s), "fingerprint": runfiles.fingerprint(s), "train_mse": history}

        records.append(runfiles.cached(paths[i], stamps[i], record))
        return records[-1]["state"]

    gad = GAD(original, "saliency", alphas)  # the method is not used to train
    gad.fit(
        data.train.images,
        data.train.labels,
        cfg.support_epochs,
        cfg.support_lr,
        cfg.batch_size,
        cfg.seed,
        cfg.support_mode,
        keep=keep,
        desc=what,
        precision=cfg.train_precision,
        model_fingerprint=stamps[0]["inputs"]["original"],  # the original's, in every support's stamp
    )
    return gad.supports, records


def logit_space(cfg: RunConfig, data: Dataset, family: ModelFamily) -> pd.DataFrame:
    """Training logits of the original, the distanced targets and each support's outputs (Fig. 1);
    read back from logit_space.csv when the same models made it (every training image through
    every model: 20 s for VGG16 in the default run)."""
    stored, st = runfiles.read_csv(RunFiles(cfg).logit_space_csv, dtype={"z1": "float32", "z2": "float32"})
    if st is not None and st["key"] == family.stamp["key"]:
        return stored
    frames = []
    z = predict_logits(family.original, data.train.images)
    frames.append(pd.DataFrame({"z1": z[:, 0], "z2": z[:, 1], "what": "original", "alpha": 0.0, "alpha_c2": 0.0}))
    for (a1, a2), support in zip(cfg.support_alphas, family.supports):
        y = distanced_targets(z, data.train.labels, (a1, a2))
        s = predict_logits(support, data.train.images)
        frames.append(pd.DataFrame({"z1": y[:, 0], "z2": y[:, 1], "what": "target", "alpha": a1, "alpha_c2": a2}))
        frames.append(pd.DataFrame({"z1": s[:, 0], "z2": s[:, 1], "what": "support", "alpha": a1, "alpha_c2": a2}))
    out = pd.concat(frames, ignore_index=True)
    out["label"] = [data.classes[int(k)] for k in data.train.labels.repeat(len(frames))]
    runfiles.write_csv(out, RunFiles(cfg).logit_space_csv, family.stamp)  # same models, same stamp
    return out


# ---------------------------------------------------------------- 03 attributions
def eval_images(cfg: RunConfig, data: Dataset):
    idx = eval_indices(data.test, cfg.n_eval, cfg.seed)
    return idx, data.test.subset(idx)


@dataclass
class Attributions:
    maps: dict[str, torch.Tensor]  # {method: (models, 2 classes, N, H, W)}
    keys: dict[str, str]  # {method: key of its stored file}
    precision: dict[str, str]  # {method: "fp32" | "bf16"}, the same for every model of the family
    agreement: dict | None  # worst bf16-vs-fp32 agreement per method, when the probe ran

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame(
            [(m, tuple(v.shape), float(v.mean()), self.precision[m]) for m, v in self.maps.items()],
            columns=["method", "shape", "mean", "precision"],
        )


def attribution_stamp(cfg: RunConfig, models: list[str], method: str, used: str, images: str) -> dict:
    """The stamp of a method's maps: of the family's models (fingerprints), in precision `used`,
    of the evaluation images (`split_fingerprint`)."""
    fields = runfiles.EVAL_FIELDS + (("ig_steps",) if method == "integrated_gradients" else ())
    return runfiles.stamp("attributions", cfg, fields, method=method, precision=used, models=models, images=images)


def attributions(cfg: RunConfig, data: Dataset, family: ModelFamily) -> Attributions:
    """Maps of every method for both classes, every model and the evaluation images, in one
    precision per method for the whole family; stored once per method."""
    files = RunFiles(cfg)
    _, ev = eval_images(cfg, data)
    x = normalize(ev.images)
    device = pick_device(cfg.device)
    plan, agreement, probe = precision.plan(
        cfg, files, family.all, family.fingerprints, x, ev.labels, device, describe_device(device)
    )
    images = runfiles.split_fingerprint(ev)  # the very images: a rebuilt data folder is noticed
    stamps = {m: attribution_stamp(cfg, family.fingerprints, m, plan[m], images) for m in cfg.methods}
    out = {m: runfiles.load_own(files.attributions(m), stamps[m]) for m in cfg.methods}
    todo = [m for m in cfg.methods if out[m] is None]
    if todo:
        rest = torch.arange(len(x))
        if probe is not None:  # the probe's maps in the chosen precision are kept, not recomputed
            rest = rest[~torch.isin(rest, probe[0])]
        fresh = attribution_maps(
            family.all,
            x[rest],
            todo,
            ig_steps=cfg.ig_steps,
            batch_size=cfg.batch_size,
            internal_batch=cfg.ig_internal_batch,
            device=device,
            precision={m: plan[m] for m in todo},
        )
        for m in todo:
            maps = torch.zeros(len(family.all), 2, len(x), *x.shape[-2:])
            maps[:, :, rest] = fresh[m]
            if probe is not None:
                maps[:, :, probe[0]] = probe[1][m]
            runfiles.save(files.attributions(m), maps, stamps[m])
            out[m] = maps
        print(f"computed {', '.join(todo)}")
    notices.note(precision.describe(cfg, plan, agreement, device))
    return Attributions(out, {m: st["key"] for m, st in stamps.items()}, plan, agreement)


# ---------------------------------------------------------------- 04 complexity


@dataclass
class Complexity:
    rc: pd.DataFrame  # per image, method, hull rule and target class
    ground_truth: pd.DataFrame | None  # synthetic data only
    consensus: dict[str, torch.Tensor]  # {method: (2, N, H, W) bool}
    hulls: dict  # {(method, hull rule): {"orig" | "gad" | "base" | "base_hull": (2, N, H, W) bool}}
    key: str  # of the stamp all of it was made under (rc.csv's): what later stages name as their input


def complexity(cfg: RunConfig, data: Dataset, family: ModelFamily, attr: Attributions) -> Complexity:
    """Consensus, GAD map, the two baselines and their hulls under every hull rule, RC per image,
    and (synthetic data) scores against the true object. Cached under one stamp."""
    files = RunFiles(cfg)
    st = runfiles.stamp(
        "complexity",
        cfg,
        runfiles.COMPLEXITY_FIELDS,
        models=family.fingerprints,
        attributions=attr.keys,
        precision=attr.precision,
        definition=REGIONS_VERSION,
    )
    _, ev = eval_images(cfg, data)
    consensus = runfiles.load_own(files.consensus, st)
    hulls = runfiles.load_own(files.hulls, st)
    rc_df, rc_st = runfiles.read_csv(files.rc_csv)
    gt_df, gt_st = runfiles.read_csv(files.ground_truth_csv)
    has_gt = ev.masks is not None
    if (
        consensus is not None
        and hulls is not None
        and rc_st
        and rc_st["key"] == st["key"]
        and (not has_gt or (gt_st and gt_st["key"] == st["key"]))
    ):
        return Complexity(rc_df, gt_df if has_gt else None, consensus, hulls, st["key"])
    rc_rows, gt_rows, hulls, consensus = [], [], {}, {}
    # One method at a time on the GPU when there is one: the ranking, the consensus, the hulls and
    # the areas are exact there too (comparisons, counts, integer geometry), so the masks and RC
    # are the CPU's; only the results come back. The ground-truth scores sum float maps, whose
    # order of additions differs between devices, so they are computed on the CPU.
    device = pick_device(cfg.device)
    for method, m in tqdm(attr.maps.items(), desc="complexity", leave=False):
        c, views = cons.regions(m.to(device), cfg.consensus_rule, cfg.consensus_q, cfg.consensus_tau)  # (2, N, H, W)
        consensus[method] = c.cpu()
        share = (metrics.area(c) / c[0, 0].numel()).cpu()
        all_hulls = region_hulls(views, cfg.hull_rules, cfg.hull_q, cfg.hull_tau)
        views_cpu = {k: v.cpu() for k, v in views.items()} if has_gt else {}
        for rule in cfg.hull_rules:
            h = {k: all_hulls[(rule, k)] for k in (*views, "base_hull")}
            hulls[(method, rule)] = {k: v.cpu() for k, v in h.items()}
            rc = metrics.rc(h["gad"], h["orig"]).cpu()
            rc_base = metrics.rc(h["base"], h["orig"]).cpu()
            rc_base_hull = metrics.rc(h["base_hull"], h["orig"]).cpu()
            area_orig, area_gad = metrics.area(h["orig"]).cpu(), metrics.area(h["gad"]).cpu()
            for t in (0, 1):
                rc_rows.append(
                    pd.DataFrame(
                        {
                            "method": method,
                            "hull_rule": rule,
                            "target": t + 1,
                            "image": range(len(ev)),
                            "label": (ev.labels + 1).numpy(),
                            "rc": rc[t].numpy(),
                            "rc_base": rc_base[t].numpy(),
                            "rc_base_hull": rc_base_hull[t].numpy(),
                            "area_orig": area_orig[t].numpy(),
                            "area_gad": area_gad[t].numpy(),
                            "consensus_share": share[t].numpy(),
                        }
                    )
                )
                if has_gt:
                    for kind, v in views_cpu.items():
                        gt_rows.append(
                            pd.DataFrame(
                                {
                                    "method": method,
                                    "hull_rule": rule,
                                    "target": t + 1,
                                    "map": kind,
                                    "image": range(len(ev)),
                                    "own_class": (ev.labels == t).numpy(),
                                    "mass_inside": metrics.mass_inside(v[t], ev.masks).numpy(),
                                    "pointing_hit": metrics.pointing_hit(v[t], ev.masks).numpy(),
                                    "hull_iou": metrics.iou(hulls[(method, rule)][kind][t], ev.masks).numpy(),
                                }
                            )
                        )
        del c, views, all_hulls, h  # this method's GPU tensors go before the next method's arrive
    rc_df = pd.concat(rc_rows, ignore_index=True).assign(dataset=cfg.dataset, arch=cfg.arch)
    gt_df = pd.concat(gt_rows, ignore_index=True).assign(dataset=cfg.dataset, arch=cfg.arch) if gt_rows else None
    runfiles.save(files.consensus, consensus, st)
    runfiles.save(files.hulls, hulls, st)
    if gt_df is not None:
        runfiles.write_csv(gt_df, files.ground_truth_csv, st)
    else:
        files.ground_truth_csv.unlink(missing_ok=True)
    runfiles.write_csv(rc_df, files.rc_csv, st)  # last: its stamp says the stage finished
    return Complexity(rc_df, gt_df, consensus, hulls, st["key"])


# ---------------------------------------------------------------- 05 sensitivity
def sensitivity(cfg: RunConfig, data: Dataset, family: ModelFamily) -> pd.DataFrame:
    """RS of the GAD hull, the supplementary region (orig hull minus GAD hull) and the two
    baselines' hulls, for each method, hull rule and target class."""
    files = RunFiles(cfg)
    expected = runfiles.stamp(
        "complexity", cfg, runfiles.COMPLEXITY_FIELDS, models=family.fingerprints, definition=REGIONS_VERSION
    )
    hulls, hull_st = runfiles.load_input(files.hulls, expected, partial=True)  # an older hull file: rerun 04
    st = runfiles.stamp(
        "sensitivity", cfg, runfiles.SENSITIVITY_FIELDS, models=family.fingerprints, complexity=hull_st["key"]
    )
    rs_df, rs_st = runfiles.read_csv(files.rs_csv)
    if rs_st and rs_st["key"] == st["key"] and runfiles.load_own(files.eval_logits, st) is not None:
        return rs_df
    _, ev = eval_images(cfg, data)
    x = normalize(ev.images)
    rows, batch = [], cfg.batch_size * 4
    logits = metrics.unoccluded_logits(family.original, x, batch)  # N_a(I): once, not once per method and rule
    for (method, rule), h in tqdm(hulls.items(), desc="sensitivity", leave=False):
        masks = cons.occlusion_regions(h)
        for t in (0, 1):
            stacked = torch.stack([m[t] for m in masks.values()])
            values = metrics.rs(family.original, x, stacked, t, cfg.occlusion_fill, batch, logits)
            for kind, v in zip(masks, values):
                rows.append(
                    pd.DataFrame(
                        {
                            "method": method,
                            "hull_rule": rule,
                            "target": t + 1,
                            "mask": kind,
                            "image": range(len(ev)),
                            "rs": v.numpy(),
                        }
                    )
                )
    df = pd.concat(rows, ignore_index=True).assign(dataset=cfg.dataset, arch=cfg.arch)
    runfiles.save(files.eval_logits, predict_logits(family.original, x), st)  # for figure 6
    runfiles.write_csv(df, files.rs_csv, st)
    return df
