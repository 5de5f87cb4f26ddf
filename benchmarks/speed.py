"""Speed of gadlib's heavy stages against the plain way of doing the same work, in one run.

    python benchmarks/speed.py                       # every stage, CPU sizes (several minutes on 2 cores)
    python benchmarks/speed.py --stage hulls --size 224
    python benchmarks/speed.py --size 224 --images 128 --ig-steps 50 --train-images 1024   # GPU sizes

Stages:
- hulls: the complexity stage's hulls (original, GAD and baseline maps, two threshold rules,
  both classes, five methods) through gadlib's batched fill, against scikit-image's
  convex_hull_image one mask at a time (the loop gadlib had before); the top-q threshold
  from the k-th largest value, against ranking every pixel (as before); and the hull-matched
  baseline's search with the pixels ranked once, against a top-k at every step of the search
  (as first written); and that search with its hulls' corners found by testing every pair of
  candidates (what CUDA runs), against the monotone chain (what the CPU runs). Results
  must be equal.
- sanity: notebook 07's sanity check, its Spearman correlations of every randomised map with
  the trained one (tied values averaged), ranked in one batched call with the trained maps
  ranked once, against scipy's rankdata on both maps of every comparison. Results must be equal.
- curves: notebook 07's deletion and insertion curves of five maps per image, each distinct
  input evaluated once, against evaluating every input; the curves compared.
- attributions: gadlib's engine against plain captum (one call per method, class and model,
  batched over images), per method and all five in one call; maps compared (Spearman, Jaccard).
- smoothgrad: notebook 07's SmoothGrad control (five methods, both classes, 5 noisy samples: as
  many as models in a family of four supports) on the engine, against captum's NoiseTunnel
  per method and class as gadlib called it before (with the single-pixel and 2 x 2 convolutions
  as linear layers, and IG's steps in --internal-batch inputs); the same noise, maps compared.
  On CUDA the engine may cut the images into smaller chunks than --batch to fit free memory,
  and then draws other noise (the check column shows it).
- preparation: readying each model for the engine (an eval-mode copy with batch norm folded
  into the layer before it), against torch.fx's `fuse` (a copy of every weight, a traced and
  generated module) as the engine did before; the same outputs to the bit.
- training: one support's epochs from images decoded once into memory, against a torchvision
  ImageFolder + DataLoader that decodes the JPEG files in every epoch.
- decode: decoding --train-images image files of the cats-vs-dogs pack (synthetic JPEGs where
  it is not, or with --synthetic) on gadlib's thread pool, against one file at a time; the
  images must be equal.
- convs: each architecture at 32 px, support training and the engine with the convolutions
  on 1 x 1 and 2 x 2 maps as linear layers (gadlib/convs.py), against the same calls without.
- relu: the engine's five methods with its plain ReLU rule as torch.relu, against clamp(min=0)
  as before (in the torch the project pins, the same values and gradients: the maps must be
  equal to the bit).
- memory (CPU): each architecture at --size, support training and the engine in a process that
  keeps freed memory for reuse (gadlib/cpu_memory.py, as the notebooks do on the CPU), against
  one with malloc's defaults (it took about 8 minutes at 64 px on 2 cores). The other stages
  run in this process, with malloc's defaults on both sides, or with freed memory kept on
  both sides under --keep-freed-memory.
- evaluation: the forward passes of RS and the deletion and insertion curves (batches of 256,
  no gradients), on each model's prepared copy in channels_last (`attributions.for_evaluation`
  takes it on CUDA), against the model as trained (what they run on the CPU); the logits'
  largest difference printed (the same but for rounding).
- compile: the engine (all five methods in one call, as notebook 03 makes it) on each model as
  prepared, against `torch.compile` of the prepared model, the lever the speed issue names for
  the GPU; "plain" is the eager engine here. A first call compiles, timed apart (without the
  on-disk caches of compiled graphs), with the number of graphs compiled in it and after it;
  then the warm-up and the timed runs. The engine's two backward passes on one forward graph need
  `torch._functorch.config.donated_buffer = False`; dynamo's recompile limit is raised so that
  every chunk shape and ReLU rule stays compiled. Maps compared (Spearman, Jaccard, largest
  difference). `--compile-modes` times several of torch.compile's modes in turn, each compiled
  afresh: `reduce-overhead` replays CUDA graphs on a GPU, the issue's other lever (on the CPU it
  has none to replay: 0.03x and 0.89x of eager in two runs, benchmarks/README.md).

Every timing runs the same work on the same shapes once first (warm-up: cuDNN autotuning,
allocator, caches), then reports the median of --reps runs. The plain and the gadlib way of a row
run in turn, the order reversed every other round (`interleaved_times`): two rounds of one call
differ by up to 15% on the 2-core CPUs here, and a drift would otherwise fall on one side (the
tables recorded before 2026-12-05's third session timed one side's runs, then the other's).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gadlib import consensus as cons
from gadlib import hulls, record
from gadlib.attributions import attribution_maps, clear_prepared, map_agreement
from gadlib.config import METHOD_SHORT, METHODS
from gadlib.hulls import hull_mask, hull_masks, hull_matched_map, region_hulls
from gadlib.models import build_model, describe_device, pick_device
from gadlib.synthetic import blob_maps

from captum_reference import captum_maps

ROOT = Path(__file__).resolve().parent.parent


def median_time(fn, device: torch.device, reps: int):
    """Warm-up run, then the median wall time of `reps` runs; returns (last result, seconds)."""
    return interleaved_times([fn], device, reps)[0]


def interleaved_times(fns, device: torch.device, reps: int):
    """A warm-up run of each function, then `reps` rounds in which each runs once, in turn and
    in the reverse order every other round (a b, b a, a b, ...), so that the machine's drift
    between rounds (up to 15% between identical rounds on the 2-core CPUs here) and what one call
    leaves to the next fall on each alike; [(last result, median seconds)] in the order of `fns`."""
    for fn in fns:
        fn()
    times, outs = [[] for _ in fns], [None] * len(fns)
    for r in range(reps):
        order = list(enumerate(fns))
        for i, fn in order if r % 2 == 0 else order[::-1]:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            outs[i] = fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[i].append(time.perf_counter() - start)
    return [(out, statistics.median(t)) for out, t in zip(outs, times)]


def row(stage: str, work: str, t_plain: float, t_gad: float, n: int, unit: str, check: str) -> dict:
    """One line of a benchmark table: both times, each per item ("ms/mask") or as a rate
    ("img/s") for n items per run, and their ratio."""

    def per(t):
        return 1e3 * t / n if unit.startswith("ms/") else n / t

    return {
        "stage": stage,
        "work": work,
        "plain s": t_plain,
        "gadlib s": t_gad,
        f"plain {unit}": per(t_plain),
        f"gadlib {unit}": per(t_gad),
        "ratio": t_plain / t_gad,
        "check": check,
    }


def header(device: torch.device) -> str:
    import captum
    import skimage
    import torchvision

    # as a run's record tells them (RUN.json): the CPU's model and bf16, and edits to the code
    # that computes (the benchmarks' own too)
    code = record.code_state((*record.RESULT_PATHS, "benchmarks"))
    commit = (code["commit"] or "unknown")[:7]
    if code["dirty"]:
        commit += f" (with uncommitted changes: {', '.join(code['dirty_paths'])})"
    return (
        f"device: {describe_device(device)}, {torch.get_num_threads()} CPU threads; commit {commit}; "
        f"torch {torch.__version__}, "
        f"torchvision {torchvision.__version__}, captum {captum.__version__}, scikit-image {skimage.__version__}, "
        f"python {platform.python_version()}"
    )


# ---------------------------------------------------------------- hulls
def bench_hulls(args, device) -> pd.DataFrame:
    """The complexity stage's hull work for --images images and five methods: the original
    map, the GAD map and the matched-area baseline, two threshold rules, both classes. Three
    rows: the hull fill (the same masks in), the top-q threshold (the same maps in) and the
    hull-matched baseline's search (`matched_row`)."""
    gen = torch.Generator().manual_seed(0)
    family = blob_maps(5 * 2 * args.images, args.size, args.size, gen).view(5, 2, args.images, args.size, args.size)
    c = cons.consensus(family)
    views = {"orig": family[0], "gad": cons.gad_map(family[0], c), "base": cons.matched_area_map(family[0], c)}
    masks = torch.stack([cons.important(views[k], r, 0.5, 0.1) for r in ("top_q", "frac_max") for k in views])
    n_methods = len(METHODS)
    n = masks.numel() // (args.size * args.size) * n_methods

    def batched():  # one call per method, as the complexity stage makes them
        return [hull_masks(masks, device=device) for _ in range(n_methods)]

    def loop():  # one scikit-image call per mask
        flat = masks.reshape(-1, args.size, args.size).numpy()
        return [np.stack([hull_mask(m) for m in flat]) for _ in range(n_methods)]

    (fast, t_fast), (plain, t_plain) = interleaved_times([batched, loop], device, args.reps)
    same = np.array_equal(fast[0].reshape(plain[0].shape).numpy(), plain[0])
    stacked = torch.stack(list(views.values())).to(device)
    k = round(0.5 * args.size * args.size)
    (top, t_top), (ranked, t_ranked) = interleaved_times(
        [
            lambda: [cons.top_k_mask(stacked, k) for _ in range(n_methods)],
            lambda: [(cons.pixel_ranks(stacked) < k) & (stacked > 0) for _ in range(n_methods)],
        ],
        device,
        args.reps,
    )
    m = stacked.numel() // (args.size * args.size) * n_methods
    return pd.DataFrame(
        [
            row(
                "hulls",
                f"hull fill, {n} masks, {args.size} px",
                t_plain,
                t_fast,
                n,
                "ms/mask",
                "masks equal" if same else "MASKS DIFFER",
            ),
            row(
                "hulls",
                f"top-q threshold, {m} maps",
                t_ranked,
                t_top,
                m,
                "ms/mask",
                "masks equal" if torch.equal(top[0], ranked[0]) else "MASKS DIFFER",
            ),
            matched_row(views, n_methods, device, args),
            corners_row(views, n_methods, device, args),
        ]
    )


def corners_row(views: dict, n_methods: int, device, args) -> dict:
    """The hull-matched search (`region_hulls` of the views, both rules) with the chains' corners
    found by the test of every pair of candidates, which CUDA runs, against the monotone
    chain, which the CPU runs (`hulls.CORNER_SEARCH`); the same hulls either way."""
    on_device = {k: v.to(device) for k, v in views.items()}

    def search(how):
        def run():
            kept, hulls.CORNER_SEARCH = hulls.CORNER_SEARCH, how
            try:
                return [region_hulls(on_device, ["top_q", "frac_max"], 0.5, 0.1) for _ in range(n_methods)]
            finally:
                hulls.CORNER_SEARCH = kept

        return run

    (pairs, t_pairs), (chain, t_chain) = interleaved_times([search("pairs"), search("chain")], device, args.reps)
    same = all(torch.equal(pairs[0][k], chain[0][k]) for k in chain[0])
    n = views["orig"].flatten(0, -3).shape[0] * 2 * n_methods
    return row(
        "hulls",
        f"hull corners by pairs (CUDA) vs the chain (CPU), {n} maps x rules",
        t_chain,
        t_pairs,
        n,
        "ms/map",
        "hulls equal" if same else "HULLS DIFFER",
    )


def matched_row(views: dict, n_methods: int, device, args) -> dict:
    """The hull-matched baseline's search as the complexity stage runs it (`region_hulls`: one
    `hull_matched_map` call, the original ranked once, both hull rules' GAD-hull targets stacked)
    against the binary search as first written, one rule at a time with a top_k_mask at every
    step; --images images, both classes, five methods. One row per map and rule searched."""
    orig = views["orig"].to(device)
    rules = ("top_q", "frac_max")
    gad_masks = torch.stack([cons.important(views["gad"], rule, 0.5, 0.1) for rule in rules])
    targets = hull_masks(gad_masks, device=device).flatten(-2).sum(-1).to(device)  # (rules, classes, images)

    def per_step(target):
        lo, hi = torch.zeros_like(target, dtype=torch.long), (orig > 0).flatten(-2).sum(-1)
        while bool((active := lo < hi).any()):
            mid = (lo + hi) // 2
            reached = hull_masks(cons.top_k_mask(orig, mid), device=device).flatten(-2).sum(-1) >= target
            hi, lo = torch.where(active & reached, mid, hi), torch.where(active & ~reached, mid + 1, lo)
        return hull_masks(cons.top_k_mask(orig, lo), device=device)

    (fast, t_fast), (plain, t_plain) = interleaved_times(
        [
            lambda: [hull_matched_map(orig, targets)[1] for _ in range(n_methods)],
            lambda: [torch.stack([per_step(t) for t in targets]) for _ in range(n_methods)],
        ],
        device,
        args.reps,
    )
    n = targets.numel() * n_methods
    same = "hulls equal" if torch.equal(fast[0].cpu(), plain[0].cpu()) else "HULLS DIFFER"
    return row("hulls", f"hull-matched search, {n} maps x rules", t_plain, t_fast, n, "ms/map", same)


# ---------------------------------------------------------------- sanity
def bench_sanity(args, device) -> pd.DataFrame:
    """The sanity check's rank correlations (notebook 07's cascade: 5 randomisation steps x five
    methods x the original, GAD and baseline maps, both classes, --images images) with the
    trained maps ranked once and every map ranked in one batched call on `device`
    (`sanity.average_ranks`), against scipy's rankdata on both maps of every comparison, one
    map at a time, as the cascade did before. The correlations must be equal."""
    from scipy.stats import rankdata

    from gadlib import sanity

    gen = torch.Generator().manual_seed(0)

    def views(n_models):  # original, GAD and baseline maps (2, images, H, W), zeros outside a region
        family = blob_maps(n_models * 2 * args.images, args.size, args.size, gen)
        family = family.view(n_models, 2, args.images, args.size, args.size)
        c = cons.consensus(family)
        return [family[0], cons.gad_map(family[0], c), cons.matched_area_map(family[0], c)]

    trained, randomised = views(5), views(5)
    steps, n_methods = len(sanity.STEPS), len(METHODS)

    def plain():
        def ranks(m):
            return rankdata(m.flatten(-2).double().numpy(), axis=-1)

        return [
            sanity.rank_correlation(torch.from_numpy(ranks(a)), torch.from_numpy(ranks(b)))
            for _ in range(steps * n_methods)
            for a, b in zip(trained, randomised)
        ]

    def batched():
        out = []
        for _ in range(n_methods):  # each method's trained maps ranked once, then compared at every step
            ranked = [sanity.average_ranks(a.to(device)) for a in trained]
            out += [
                sanity.rank_correlation(ra, sanity.average_ranks(b.to(device)))
                for _ in range(steps)
                for ra, b in zip(ranked, randomised)
            ]
        return out

    (fast, t_fast), (slow, t_slow) = interleaved_times([batched, plain], device, args.reps)
    same = all(np.array_equal(a, b) for a, b in zip(fast, slow))
    n = steps * n_methods * 3 * 2 * args.images
    work = f"spearman, {n} map pairs, {args.size} px"
    return pd.DataFrame([row("sanity", work, t_slow, t_fast, n, "ms/pair", "equal" if same else "DIFFER")])


# ---------------------------------------------------------------- curves
def bench_curves(args, device) -> pd.DataFrame:
    """Notebook 07's deletion and insertion curves for one method and class: five maps per image
    (the original, GAD, the matched-area baseline, an alpha = 0-like GAD map from a second
    family's consensus and a SmoothGrad-like map kept at the same area, all blob-like), --images
    images, steps of 5%, a random-weight model of each architecture. gadlib evaluates each
    distinct input once; the plain way evaluates every input (as notebook 07 did before)."""
    from gadlib import controls, faithfulness

    gen = torch.Generator().manual_seed(0)
    n, size = args.images, args.size
    orig = blob_maps(n, size, size, gen)

    def like_orig(models):  # maps of models near the original: its map plus one as large of their own
        return orig + blob_maps(models * n, size, size, gen).view(models, n, size, size)

    # consensus about a quarter of the pixels, and a fifth of the inputs repeats, as in notebook 07's runs
    c, c0 = cons.consensus(torch.cat([orig[None], like_orig(4)])), cons.consensus(torch.cat([orig[None], like_orig(4)]))
    # on the models' device, as notebook 07 hands them over
    maps = torch.stack(list(controls.control_views(orig, c, c0, like_orig(1)[0]).values())).to(device)
    rows = []
    for arch in args.archs:
        models, x = random_models(arch, args, device)

        def run(share, model=models[0], x=x):
            fill = torch.zeros(1, 3, 1, 1)
            return faithfulness.curves(model, x, maps, 0, fill, 0.05, batch_size=4 * args.batch, share=share)

        (fast, t_fast), (plain, t_plain) = interleaved_times(
            [lambda run=run: run(True), lambda run=run: run(False)], device, args.reps
        )
        worst = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(fast[1:], plain[1:]))
        counts = faithfulness.steps(size * size, 0.05)
        jobs, source = faithfulness.inputs_to_evaluate(faithfulness.ranks_with_seeded_ties(maps).flatten(-2), counts)
        inputs = len(source)
        check = "curves equal" if worst == 0 else f"curves apart by {worst:.1e} of their largest"
        check += f"; {len(jobs) / inputs:.2f} of the inputs distinct"
        rows.append(row("curves", f"{arch}, {inputs} inputs, {size} px", t_plain, t_fast, inputs, "img/s", check))
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- attributions
def random_models(arch, args, device):
    torch.manual_seed(0)
    models = []
    for _ in range(args.models):
        m = build_model(arch, 2, args.size).eval().to(device)
        for mod in m.modules():  # trained-looking batch-norm statistics, so folding is real work
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.2)
                mod.running_var.uniform_(0.5, 2)
        models.append(m)
    return models, torch.randn(args.images, 3, args.size, args.size, device=device)


def engine_maps(models, x, methods, args) -> dict[str, torch.Tensor]:
    """The engine's maps with the benchmark's settings (--ig-steps, --batch, --internal-batch,
    --precision)."""
    return attribution_maps(
        models,
        x,
        methods,
        ig_steps=args.ig_steps,
        batch_size=args.batch,
        internal_batch=args.internal_batch,
        precision=args.precision,
        progress=False,
    )


def bench_attributions(args, device) -> pd.DataFrame:
    rows = []
    for arch in args.archs:
        models, x = random_models(arch, args, device)
        n = len(x) * len(models)
        reference = {}

        def engine(methods, models=models, x=x):  # preparation (copy, batch-norm folding) included
            clear_prepared()
            return engine_maps(models, x, methods, args)

        plain_total = 0.0
        for method in METHODS:
            (plain, t_plain), (fast, t_fast) = interleaved_times(
                [
                    lambda method=method, models=models, x=x: captum_maps(
                        models, x, [method], ig_steps=args.ig_steps, internal_batch_size=args.internal_batch
                    ),
                    lambda method=method, engine=engine: engine([method]),
                ],
                device,
                args.reps,
            )
            reference[method] = plain[method]
            plain_total += t_plain
            rho, jac = map_agreement(fast[method], plain[method])
            check = f"spearman {float(rho.min()):.3f}, jaccard {float(jac.min()):.3f}"
            rows.append(row("attributions", f"{arch} {METHOD_SHORT[method]}", t_plain, t_fast, n, "img/s", check))
        together, t_all = median_time(lambda: engine(list(METHODS)), device, args.reps)
        worst = [map_agreement(together[m], reference[m]) for m in METHODS]
        check = (
            f"spearman {min(float(r.min()) for r, _ in worst):.3f}, jaccard {min(float(j.min()) for _, j in worst):.3f}"
        )
        rows.append(row("attributions", f"{arch} all five", plain_total, t_all, n, "img/s", check))
    return pd.DataFrame(rows)


def bench_compile(args, device) -> pd.DataFrame:
    from unittest import mock

    import torch._dynamo.config as dynamo_config
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config
    from torch._dynamo.utils import counters

    from gadlib import attributions as engine

    eager_prepared = engine.prepared
    rows = []
    for arch in args.archs:
        models, x = random_models(arch, args, device)
        n = len(x) * len(models)

        def maps(prepare=None, models=models, x=x):
            swap = mock.patch.object(engine, "prepared", prepare) if prepare else contextlib.nullcontext()
            with swap:
                return engine_maps(models, x, list(METHODS), args)

        eager, t_eager = median_time(maps, device, args.reps)
        for mode in args.compile_modes:
            work = f"{arch} all five" + ("" if mode == "default" else f", {mode}")
            compiled: dict[int, torch.nn.Module] = {}

            def compiled_prepared(model, dev, compiled=compiled, mode=mode):  # each prepared model compiled once
                ready = eager_prepared(model, dev)
                if id(ready) not in compiled:
                    compiled[id(ready)] = torch.compile(ready, mode=mode)
                return compiled[id(ready)]

            torch._dynamo.reset()  # compiles afresh: nothing of the architecture or an earlier mode before
            counters.clear()
            # without the on-disk caches of compiled graphs, so the first call's time is a cold compile
            patches = (
                functorch_config.patch(donated_buffer=False, enable_autograd_cache=False),
                dynamo_config.patch(recompile_limit=64),
                inductor_config.patch(fx_graph_cache=False),
            )
            try:
                with patches[0], patches[1], patches[2]:
                    started = time.perf_counter()
                    maps(compiled_prepared)  # compiles: timed apart from the median below
                    first = time.perf_counter() - started
                    graphs = counters["stats"]["unique_graphs"]
                    fast, t_fast = median_time(lambda: maps(compiled_prepared), device, args.reps)
                    recompiled = counters["stats"]["unique_graphs"] - graphs
            except Exception as error:  # no C++ compiler, an unsupported device: say so, keep the other rows
                rows.append(row("compile", work, t_eager, float("nan"), n, "img/s", f"failed: {error}"[:200]))
                continue
            worst = [map_agreement(fast[m], eager[m]) for m in METHODS]
            off = max(float((fast[m] - eager[m]).abs().max() / eager[m].abs().max().clamp(min=1e-30)) for m in METHODS)
            check = (
                f"spearman {min(float(r.min()) for r, _ in worst):.3f}, "
                f"jaccard {min(float(j.min()) for _, j in worst):.3f}, largest difference {off:.1e} of the largest "
                f"value; first compiled call {first:.0f} s, {graphs} graphs, {recompiled} more after it (warm-up "
                "included)"
            )
            rows.append(row("compile", work, t_eager, t_fast, n, "img/s", check))
    return pd.DataFrame(rows)


def bench_smoothgrad(args, device) -> pd.DataFrame:
    from gadlib.attributions import smoothgrad_maps

    from captum_reference import captum_smoothgrad

    rows = []
    for arch in args.archs:
        (model,), x = random_models(arch, argparse.Namespace(**{**vars(args), "models": 1}), device)
        kwargs = dict(samples=5, ig_steps=args.ig_steps, batch_size=args.batch)

        def captum_way(model=model, x=x, kwargs=kwargs):  # IG's steps in internal batches, as the engine's
            return captum_smoothgrad(model, x, list(METHODS), internal_batch_size=args.internal_batch, **kwargs)

        def engine(model=model, x=x, kwargs=kwargs):  # preparation included
            clear_prepared()
            return smoothgrad_maps(
                model, x, list(METHODS), internal_batch=args.internal_batch, precision=args.precision, **kwargs
            )

        (plain, t_plain), (fast, t_fast) = interleaved_times([captum_way, engine], device, args.reps)
        worst = [map_agreement(fast[m], plain[m]) for m in METHODS]
        check = (
            f"spearman {min(float(r.min()) for r, _ in worst):.3f}, jaccard {min(float(j.min()) for _, j in worst):.3f}"
        )
        rows.append(row("smoothgrad", f"{arch} all five, 5 samples", t_plain, t_fast, len(x), "img/s", check))
    return pd.DataFrame(rows)


def bench_preparation(args, device) -> pd.DataFrame:
    from torch.fx.experimental.optimization import fuse

    from gadlib.attributions import prepare_model
    from gadlib.convs import use_small_map_convs

    rows = []
    for arch in args.archs:
        models, x = random_models(arch, args, device)
        (plain, t_plain), (ours, t_ours) = interleaved_times(
            [
                lambda models=models: [fuse(m) for m in models],
                lambda models=models: [prepare_model(m, device) for m in models],
            ],
            device,
            args.reps,
        )
        with torch.no_grad():  # the same folding, so the same outputs to the bit
            same = all(torch.equal(use_small_map_convs(a)(x[:4]), b(x[:4])) for a, b in zip(plain, ours))
        rows.append(
            row(
                "preparation",
                f"{arch}, {len(models)} model(s)",
                t_plain,
                t_ours,
                len(models),
                "ms/model",
                "outputs equal" if same else "OUTPUTS DIFFER",
            )
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- training
def image_folder(args, scratch: Path) -> Path:
    """A folder of class folders of JPEGs: the cats-vs-dogs pack beside the project, or
    --train-images synthetic JPEGs written to `scratch` (--synthetic, or where the pack is not)."""
    from torchvision import transforms

    from gadlib.synthetic import make_synthetic

    pack = ROOT.parent / "shared" / "data" / "catsdogs"
    if pack.is_dir() and not args.synthetic:
        return pack
    x, y, _ = make_synthetic(args.train_images, 256, seed=0)
    for i, (img, label) in enumerate(zip(x, y)):
        (scratch / f"class{int(label)}").mkdir(exist_ok=True)
        transforms.functional.to_pil_image(img).save(scratch / f"class{int(label)}" / f"{i}.jpg", quality=90)
    return scratch


def bench_decode(args, device) -> pd.DataFrame:
    """Decoding --train-images image files at --size (`data.decode_images`) on its thread pool,
    against one file at a time (the pool of one thread); the images must be equal."""
    from gadlib import data

    with tempfile.TemporaryDirectory(prefix="gad-bench-") as scratch:
        files = sorted(p for p in image_folder(args, Path(scratch)).rglob("*") if p.suffix.lower() == ".jpg")
        files = files[: args.train_images]

        def decode(threads):
            def run():
                kept, data.DECODE_THREADS = data.DECODE_THREADS, threads
                try:
                    return data.decode_images(files, args.size)[0]
                finally:
                    data.DECODE_THREADS = kept

            return run

        (pool, t_pool), (one, t_one) = interleaved_times(
            [decode(data.DECODE_THREADS), decode(1)], torch.device("cpu"), args.reps
        )
    threads = min(data.DECODE_THREADS, torch.get_num_threads())
    work = f"decode {len(files)} files at {args.size} px, {threads} threads"
    return pd.DataFrame(
        [
            row(
                "decode",
                work,
                t_one,
                t_pool,
                len(files),
                "img/s",
                "images equal" if torch.equal(pool, one) else "IMAGES DIFFER",
            )
        ]
    )


def bench_training(args, device) -> pd.DataFrame:
    from torch.utils.data import DataLoader, Dataset
    from torchvision import datasets, transforms

    from gadlib.data import decode_images
    from gadlib.training import train_support, uses_bf16

    scratch = tempfile.TemporaryDirectory(prefix="gad-bench-")  # removed when the benchmark ends
    folder = image_folder(args, Path(scratch.name))
    tf = transforms.Compose(
        [
            transforms.Resize(args.size),
            transforms.CenterCrop(args.size),
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    base = datasets.ImageFolder(folder, transform=tf)
    keep = torch.randperm(len(base), generator=torch.Generator().manual_seed(0))[: args.train_images].tolist()

    class Indexed(Dataset):
        def __len__(self):
            return len(keep)

        def __getitem__(self, i):
            x, y = base[keep[i]]
            return x, y, i

    torch.manual_seed(0)
    original = build_model(args.train_arch, 2, args.size).to(device).eval()
    targets = torch.randn(len(keep), 2)
    loader = DataLoader(Indexed(), batch_size=args.batch, shuffle=True, num_workers=args.workers)

    model = copy.deepcopy(original)
    opt = torch.optim.Adam(model.parameters(), lr=4e-5)

    def plain_epoch():
        model.train()
        for x, _, idx in loader:
            loss = torch.nn.functional.mse_loss(model(x.to(device)), targets[idx].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()

    start = time.perf_counter()
    images, kept = decode_images([Path(base.samples[i][0]) for i in keep], args.size)
    t_decode = time.perf_counter() - start
    (_, t_plain), (_, t_gad) = interleaved_times(
        [plain_epoch, lambda: train_support(original, images, targets[kept], 1, 4e-5, args.batch)], device, args.reps
    )
    n = len(keep)
    work = f"{args.train_arch}, {n} images, {args.size} px, one epoch"
    # the ratio is of the two ways as each runs by default: on CUDA gadlib's adds bf16 autocast
    # and channels_last, which the plain fp32 loop has not
    way = "bf16 autocast, channels_last" if uses_bf16(device) else "fp32"
    check = f"decoding once: {t_decode:.1f} s ({folder.name}); gadlib {way}, plain fp32"
    return pd.DataFrame([row("training", work, t_plain, t_gad, n, "img/s", check)])


# ---------------------------------------------------------------- convolutions on small maps
@contextlib.contextmanager
def without_small_map_convs():
    """gadlib with every convolution run as one (no linear layers for 1 x 1 and 2 x 2 maps,
    gadlib/convs.py)."""
    from gadlib import convs

    convs.ENABLED = False
    try:
        yield
    finally:
        convs.ENABLED = True


def bench_convs(args, device) -> pd.DataFrame:
    """Each architecture at 32 px (the default profile), where some convolutions read 1 x 1 or
    2 x 2 maps (ResNet18's last two stages, VGG16's last block): support training and the
    engine's five methods with those as linear layers, against the same calls with every
    convolution run as one. The rounding differs, so the check is how far apart the two trained
    supports' logits are, and the maps' agreement."""
    return pd.DataFrame([r for arch in args.archs for r in _bench_convs_of(arch, args, device)])


def _bench_convs_of(arch: str, args, device) -> list[dict]:
    from gadlib.training import train_support

    size, rows = 32, []
    torch.manual_seed(0)
    original = build_model(arch, 2, size).to(device).eval()
    x, targets = torch.randn(8 * args.batch, 3, size, size), torch.randn(8 * args.batch, 2)

    def train():
        return train_support(original, x, targets, 1, 4e-5, args.batch)[0]

    def train_plain():
        with without_small_map_convs():
            return train()

    (plain, t_plain), (fast, t_fast) = interleaved_times([train_plain, train], device, args.reps)
    probe = x[:64].to(device)
    with torch.no_grad():
        apart = float((plain(probe) - fast(probe)).abs().max() / plain(probe).abs().max())
    check = f"logits apart by {apart:.1e} of their largest"
    rows.append(row("convs", f"{arch} training, {len(x)} images, 32 px", t_plain, t_fast, len(x), "img/s", check))

    models, images = random_models(arch, argparse.Namespace(**{**vars(args), "size": size}), device)

    def engine():
        clear_prepared()
        return attribution_maps(models, images, list(METHODS), ig_steps=args.ig_steps, precision="fp32", progress=False)

    def engine_plain():
        with without_small_map_convs():
            return engine()

    (plain_maps, t_plain), (fast_maps, t_fast) = interleaved_times([engine_plain, engine], device, args.reps)
    worst = [map_agreement(fast_maps[m], plain_maps[m]) for m in METHODS]
    spearman, jaccard = min(float(r.min()) for r, _ in worst), min(float(j.min()) for _, j in worst)
    n = len(images) * len(models)
    check = f"spearman {spearman:.3f}, jaccard {jaccard:.3f}"
    rows.append(row("convs", f"{arch} engine, all five, 32 px", t_plain, t_fast, n, "img/s", check))
    return rows


# ---------------------------------------------------------------- the plain ReLU
@contextlib.contextmanager
def clamp_relu():
    """The engine's plain ReLU rule as it was before: x.clamp(min=0) instead of torch.relu."""
    from gadlib.attributions import SwitchableReLU, _ReLURule

    relu = SwitchableReLU.forward
    SwitchableReLU.forward = lambda self, x: x.clamp(min=0) if self.rule == "plain" else _ReLURule.apply(x, self.rule)
    try:
        yield
    finally:
        SwitchableReLU.forward = relu


def bench_relu(args, device) -> pd.DataFrame:
    """The engine's five methods on prepared models (kept between calls: the arithmetic alone),
    with the plain ReLU rule as torch.relu against clamp(min=0), the runs taken in turn (the
    gain can be below the drift between rounds). clamp's backward makes more temporaries, which
    with malloc's defaults are faulted in afresh each time: `--keep-freed-memory` times it as the
    notebooks run. In the torch the project pins both have nn.ReLU's values and gradients (the
    one at 0 included), so the maps must be equal to the bit."""
    rows = []
    for arch in args.archs:
        models, x = random_models(arch, args, device)
        clear_prepared()

        def engine(models=models, x=x):
            return engine_maps(models, x, list(METHODS), args)

        def engine_before():
            with clamp_relu():
                return engine()

        (plain, t_plain), (fast, t_fast) = interleaved_times([engine_before, engine], device, args.reps)
        equal = all(torch.equal(fast[m], plain[m]) for m in METHODS)
        n = len(x) * len(models)
        check = "maps equal" if equal else "MAPS DIFFER"
        rows.append(row("relu", f"{arch} all five, {args.size} px", t_plain, t_fast, n, "img/s", check))
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- evaluation's forward passes
def bench_evaluation(args, device) -> pd.DataFrame:
    """RS's and the curves' forward passes: the prepared copy in channels_last against the model
    as trained, 256 images per batch, in turn."""
    from gadlib.attributions import prepared

    rows = []
    for arch in args.archs:
        models, _ = random_models(arch, args, device)
        model = models[0]
        x = torch.randn(256, 3, args.size, args.size, device=device)
        fast = prepared(model, device).to(memory_format=torch.channels_last)

        def forward(net, x=x):
            with torch.no_grad():
                return net(x)

        (a, t_plain), (b, t_fast) = interleaved_times(
            [lambda m=model: forward(m), lambda m=fast: forward(m)], device, args.reps
        )
        check = f"logits differ by {float((a - b).abs().max() / a.abs().max()):.1e} of the largest"
        rows.append(row("evaluation", f"{arch} forward, {args.size} px", t_plain, t_fast, len(x), "img/s", check))
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- freed memory kept (CPU)
def bench_memory(args, device) -> pd.DataFrame:
    """Each architecture at --size: support training and the engine's five methods in a fresh
    process with freed memory kept for reuse (gadlib/cpu_memory.py, as every notebook on the CPU
    has it), against a fresh process with malloc's defaults. Only memory placement differs, so
    the check is that both give the same losses and maps to the bit, and each side's page
    faults and peak memory."""
    if device.type != "cpu":
        return pd.DataFrame([{"stage": "memory", "work": "CPU only: the setting is not made on a GPU run"}])
    rows = []
    for arch in args.archs:
        plain, kept = (_memory_worker_run(arch, args, keep) for keep in ("0", "1"))
        if not kept["applied"]:
            return pd.DataFrame([{"stage": "memory", "work": "not glibc's malloc here: the setting does nothing"}])
        for part, n in (("training", plain["train_images"]), ("engine, all five", plain["images"])):
            t_plain, t_kept = plain[part], kept[part]
            same = "same results" if plain["digest"] == kept["digest"] else "RESULTS DIFFER"
            check = (
                f"{same}; page faults {plain[part + ' faults'] / 1e3:.0f}k -> {kept[part + ' faults'] / 1e3:.0f}k, "
                f"process peak {plain['peak_mb']:.0f} -> {kept['peak_mb']:.0f} MB"
            )
            rows.append(row("memory", f"{arch} {part}, {args.size} px", t_plain, t_kept, n, "img/s", check))
    return pd.DataFrame(rows)


def _memory_worker_run(arch: str, args, keep: str) -> dict:
    import json
    import os
    import sys

    cmd = [sys.executable, __file__, "--memory-worker", arch, "--size", str(args.size), "--reps", str(args.reps)]
    cmd += ["--images", str(args.images), "--models", str(args.models), "--ig-steps", str(args.ig_steps)]
    cmd += ["--batch", str(args.batch), "--internal-batch", str(args.internal_batch)]
    env = {**os.environ, "GAD_KEEP_FREED_MEMORY": keep}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the memory stage's worker failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_worker(arch: str, args) -> None:
    """One side of bench_memory, in its own process: prints a JSON line of times (median of
    --reps after a warm-up), page faults (warm-up included), the process's peak memory, and a
    digest of the trained support, its losses and the maps."""
    import hashlib
    import json
    import resource

    from gadlib.cpu_memory import keep_freed_memory
    from gadlib.training import train_support

    applied = keep_freed_memory()  # a no-op where GAD_KEEP_FREED_MEMORY=0
    device = torch.device("cpu")
    models, images = random_models(arch, args, device)
    x, targets = torch.randn(4 * args.batch, 3, args.size, args.size), torch.randn(4 * args.batch, 2)

    def train():
        torch.manual_seed(0)
        return train_support(models[0], x, targets, 1, 4e-5, args.batch)

    def engine():
        clear_prepared()
        return attribution_maps(
            models,
            images,
            list(METHODS),
            ig_steps=args.ig_steps,
            internal_batch=args.internal_batch,
            precision="fp32",
            progress=False,
        )

    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    before = faults()
    (support, losses), t_train = median_time(train, device, args.reps)
    between = faults()
    maps, t_engine = median_time(engine, device, args.reps)
    out = {"applied": applied, "training": t_train, "engine, all five": t_engine, "train_images": len(x)}
    out["images"] = len(images) * len(models)
    out |= {"training faults": between - before, "engine, all five faults": faults() - between}
    digest = hashlib.sha256(str(losses).encode())
    for t in support.state_dict().values():
        digest.update(t.numpy().tobytes())
    for m in METHODS:
        digest.update(maps[m].numpy().tobytes())
    out |= {"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "digest": digest.hexdigest()}
    print(json.dumps(out))


BENCHES = {  # --stage name: its function, in the order of --stage all
    "hulls": bench_hulls,
    "sanity": bench_sanity,
    "curves": bench_curves,
    "attributions": bench_attributions,
    "smoothgrad": bench_smoothgrad,
    "preparation": bench_preparation,
    "training": bench_training,
    "decode": bench_decode,
    "convs": bench_convs,
    "relu": bench_relu,
    "memory": bench_memory,
    "compile": bench_compile,
    "evaluation": bench_evaluation,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--stage",
        choices=[*BENCHES, "all"],
        default="all",
    )
    ap.add_argument("--size", type=int, default=64, help="image side in pixels (224 for the paper)")
    ap.add_argument("--images", type=int, default=16, help="images explained (hulls: images per method)")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions after the warm-up; the median is shown")
    ap.add_argument("--archs", nargs="+", default=["resnet18", "vgg16"])
    ap.add_argument("--models", type=int, default=1, help="models explained (original + supports)")
    ap.add_argument("--ig-steps", type=int, default=16, help="IG steps (16 as the default profile; 50 in the paper)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--internal-batch", type=int, default=256)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="engine precision for every method")
    ap.add_argument(
        "--compile-modes",
        nargs="+",
        default=["default"],
        choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
        help="torch.compile modes timed by --stage compile, in turn (reduce-overhead: CUDA graphs on a GPU)",
    )
    ap.add_argument("--train-arch", default="resnet18")
    ap.add_argument("--train-images", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers of the plain training loop")
    ap.add_argument("--synthetic", action="store_true", help="train on synthetic JPEGs even where the shared pack is")
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="time every stage in a process that keeps freed memory for reuse, as the notebooks do on the CPU "
        "(gadlib/cpu_memory.py); without it, malloc's defaults on both sides",
    )
    ap.add_argument("--memory-worker", metavar="ARCH", help=argparse.SUPPRESS)  # one side of --stage memory
    args = ap.parse_args()
    if args.memory_worker:
        return memory_worker(args.memory_worker, args)
    device = pick_device(args.device)
    print(header(device), flush=True)
    if args.keep_freed_memory:
        from gadlib.cpu_memory import keep_freed_memory

        print(f"freed memory kept for reuse: {keep_freed_memory()}", flush=True)
    stages = list(BENCHES) if args.stage == "all" else [args.stage]
    for stage in stages:
        table = BENCHES[stage](args, device)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"), flush=True)
    print(
        f"plain: the way without gadlib (see the docstring; for compile, the eager engine); ratio = plain time / "
        f"gadlib time; median of "
        f"{args.reps} runs after a warm-up, the two ways taken in turn"
    )


if __name__ == "__main__":
    main()
