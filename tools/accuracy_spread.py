"""How far does the original classifier's test accuracy move with the training seed alone, and
does a speed lever move it further? The yardstick for the speed issue's "same test accuracy,
within 1 point" (#9): one run's accuracy before and after a lever differs by rounding's
butterfly effect, which a single seed cannot tell from the lever's own effect.

For each seed (model initialisation and batch order; the data and its split stay those of seed
0, as in the committed runs) and each variant, it trains the run's original classifier with
notebook 02's own function (`stages.original_classifier`, in a throwaway run folder: the
profile's epochs, learning rate and batch) and prints
the test accuracies, their mean and standard deviation per variant, and each variant's paired
difference from the first. Variants:
- `small-maps`: the pipeline's training (convolutions on 1 x 1 and 2 x 2 maps as linear layers);
- `plain-convs`: every convolution an `nn.Conv2d` (the pipeline before 9c92ee7 and ba604bc);
- `bf16`: the pipeline's training under `train_precision=bf16`: bf16 autocast on this device,
  and Adam's fused step (a GPU's `auto` is bf16 autocast with Adam's default step).

    .venv/bin/python tools/accuracy_spread.py --profile cpu --arch resnet18 \
        --dataset folder --data-dir ../shared/data/cub_warbler_sparrow --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from contextlib import nullcontext
from importlib.metadata import version
from unittest import mock

import numpy as np
import torch

from gadlib import runfiles, stages, training
from gadlib.config import PROFILES, RunConfig
from gadlib.cpu_memory import keep_freed_memory
from gadlib.data import real_dataset, synthetic_dataset
from gadlib.models import describe_device, predict_logits
from gadlib.record import code_state
from gadlib.stats import paired_bootstrap

VARIANTS = ("small-maps", "plain-convs", "bf16")


def train_original(cfg: RunConfig, data, seed: int, variant: str, device: torch.device) -> torch.nn.Module:
    """The original classifier notebook 02 trains with `seed` (`stages.original_classifier`, in a
    throwaway run folder), under `variant`."""
    cfg = dataclasses.replace(cfg, seed=seed, train_precision="bf16" if variant == "bf16" else cfg.train_precision)
    plain = mock.patch.object(training, "small_map_convs", lambda m: nullcontext(m))
    with tempfile.TemporaryDirectory() as runs, plain if variant == "plain-convs" else nullcontext():
        cfg.runs_dir = runs
        model, _ = stages.original_classifier(cfg, data, device, runfiles.split_fingerprint(data.train))
    return model


MIN_SEEDS = 5  # below this a bootstrap interval of the mean is far too narrow to read


def within_one_point(low: float, high: float, seeds: int) -> str:
    """What the interval of the mean difference over `seeds` paired seeds says about the issue's
    "within 1 point"."""
    if seeds < MIN_SEEDS:
        return f"too few seeds to tell (fewer than {MIN_SEEDS})"
    if -0.01 <= low and high <= 0.01:
        return "within 1 point"
    if low > 0.01 or high < -0.01:
        return "more than 1 point apart"
    return "within 1 point not shown at this many seeds (the interval reaches past it)"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="default", choices=list(PROFILES))
    ap.add_argument("--arch", default="resnet18", choices=["resnet18", "vgg16"])
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--data-dir")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--variants", nargs="+", default=["small-maps", "plain-convs"], choices=VARIANTS)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    cfg = RunConfig.build(args.profile, dataset=args.dataset, data_dir=args.data_dir, arch=args.arch)
    device = torch.device(args.device)
    code = code_state()  # taken before the work, as the runner takes it
    data = synthetic_dataset(cfg) if cfg.dataset == "synthetic" else real_dataset(cfg)
    print(
        f"Test accuracy of the original classifier by training seed: {cfg.arch}, profile {cfg.profile} "
        f"({cfg.image_size} px, {cfg.train_epochs} epochs, {len(data.train.labels)} training and "
        f"{len(data.test.labels)} test images), {cfg.dataset}"
        + (f" {args.data_dir}" if args.data_dir else "")
        + f"; learning rate {cfg.lr}, batch {cfg.batch_size}; {describe_device(device)}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, torchvision {version('torchvision')}; "
        f"commit {code['commit']}{' (with uncommitted changes)' if code['dirty'] else ''}\n"
    )
    acc: dict[str, list[float]] = {v: [] for v in args.variants}
    started = time.perf_counter()
    keep_freed_memory()  # as the notebooks train on the CPU (gadlib/cpu_memory.py)
    for seed in args.seeds:
        for v in args.variants:
            model = train_original(cfg, data, seed, v, device)
            acc[v].append(training.accuracy(predict_logits(model, data.test.images), data.test.labels))
    print("| seed | " + " | ".join(args.variants) + " |")
    print("|---:|" + "---:|" * len(args.variants))
    for i, seed in enumerate(args.seeds):
        print(f"| {seed} | " + " | ".join(f"{acc[v][i]:.3f}" for v in args.variants) + " |")

    def spread(values):
        return statistics.stdev(values) if len(values) > 1 else float("nan")

    print("| mean | " + " | ".join(f"{statistics.mean(acc[v]):.3f}" for v in args.variants) + " |")
    print("| sd over seeds | " + " | ".join(f"{spread(acc[v]):.3f}" for v in args.variants) + " |")
    print("| range | " + " | ".join(f"{max(acc[v]) - min(acc[v]):.3f}" for v in args.variants) + " |")
    first = args.variants[0]
    for v in args.variants[1:]:
        diffs = [b - a for a, b in zip(acc[first], acc[v])]
        boot = paired_bootstrap(np.array(diffs))
        print(
            f"\n{v} - {first}, paired by seed: mean {boot['mean']:+.3f} (95% bootstrap interval "
            f"{boot['low']:+.3f} to {boot['high']:+.3f}), sd {spread(diffs):.3f}, from {min(diffs):+.3f} "
            f"to {max(diffs):+.3f}: {within_one_point(boot['low'], boot['high'], len(diffs))}"
        )
    print(f"\n{len(args.seeds) * len(args.variants)} trainings in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
