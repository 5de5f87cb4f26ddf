"""How fast can this CPU train the pipeline's models at all? Prints the FLOPs of one forward and
backward pass per image (torch.utils.flop_counter), the fp32 and bf16 rate of a 2048 x 2048
matrix product, and the training rate (Adam, MSE, batch 64) of VGG16 at 32 and 64 px and
ResNet18 at 32 px, in fp32 and with `train_precision=bf16`, so that the whole-run
bounds in benchmarks/README.md can be checked: `.venv/bin/python tools/cpu_bound.py`. On a CPU without native bf16
it times fp32 only (emulated bf16 ran for over 15 minutes on an AVX2-only EPYC); `--bf16`
times it anyway. Freed memory is kept for reuse, as in the notebooks (since dc1a5fe; earlier
rates in benchmarks/README.md were timed without).

`--side-by-side` instead asks how a CPU sweep should share the cores: the training rate of one
process with every thread (`make sweep SWEEP_ARGS="--workers 1"`) against that of one process
per core on one thread each, started together at a barrier (the sweep's default LocalCluster):
all their images over the span from the first start to the last end, median of 3."""

import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from gadlib.cpu_memory import keep_freed_memory
from gadlib.models import build_model, describe_device
from gadlib.precision import bf16_available
from gadlib.training import train_support


def step_flops(arch: str, size: int) -> float:
    model = build_model(arch, 2, size).train()
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(2, 3, size, size)).sum().backward()
    return counter.get_total_flops() / 2


def matmul_rate(dtype: torch.dtype, n: int = 2048, reps: int = 20) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    started = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - started)


def timed_training(
    arch: str, size: int, bf16: bool = False, batch: int = 64, steps: int = 6, barrier=None
) -> tuple[float, float, int]:
    """(start, end, images) of the pipeline's own support training (`train_support`, MSE, Adam,
    batch 64) in fp32 or with `train_precision=bf16`, after one warm-up pass of two batches; with
    a `barrier`, timed from when every process holding it has warmed up."""
    precision = "bf16" if bf16 else "fp32"
    model = build_model(arch, 2, size)
    x, y = torch.randn(batch * steps, 3, size, size), torch.randn(batch * steps, 2)
    train_support(model, x[: 2 * batch], y[: 2 * batch], 1, 1e-4, batch, precision=precision)
    if barrier is not None:
        barrier.wait()
    started = time.time()  # wall clock: the side-by-side spans compare it across processes
    train_support(model, x, y, 1, 1e-4, batch, precision=precision)
    return started, time.time(), batch * steps


def training_rate(arch: str, size: int, bf16: bool = False, batch: int = 64, steps: int = 6) -> float:
    """Images per second of `timed_training`."""
    started, ended, images = timed_training(arch, size, bf16, batch, steps)
    return images / (ended - started)


def _one_thread(arch: str, size: int, barrier) -> tuple[float, float, int]:
    torch.set_num_threads(1)
    keep_freed_memory()
    return timed_training(arch, size, steps=8, barrier=barrier)


def side_by_side(repeats: int = 3) -> None:
    """Per model: images per second of one process on every thread, and of one process per
    thread started together (all their images over the span from the first start to the last
    end), the median of `repeats` alternations, with the ratio."""
    import multiprocessing
    import os
    import statistics

    n = torch.get_num_threads()
    keep_freed_memory()
    print(f"{describe_device(torch.device('cpu'))}, torch {torch.__version__}, load average {os.getloadavg()[0]:.2f}")
    print(f"one process on {n} threads against {n} processes on one thread each, median of {repeats}")
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(n) as pool:
        for arch, size in [("vgg16", 32), ("vgg16", 64), ("resnet18", 32)]:
            alone, together = [], []
            for _ in range(repeats):
                alone.append(training_rate(arch, size, steps=8))
                barrier = manager.Barrier(n)
                spans = pool.starmap(_one_thread, [(arch, size, barrier)] * n)
                together.append(
                    sum(i for _, _, i in spans) / (max(e for _, e, _ in spans) - min(s for s, _, _ in spans))
                )
            a, t = statistics.median(alone), statistics.median(together)
            print(
                f"{arch} {size} px training, fp32: one process {a:.0f} img/s, {n} side by side "
                f"{t:.0f} img/s in all: one process {a / t:.2f}x"
            )


if __name__ == "__main__" and "--side-by-side" in sys.argv:
    side_by_side()
elif __name__ == "__main__":
    precisions = ("fp32", "bf16") if bf16_available(torch.device("cpu")) or "--bf16" in sys.argv else ("fp32",)
    kept = keep_freed_memory()  # as the notebooks train on the CPU (gadlib/cpu_memory.py)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, freed memory kept: {kept}")
    if precisions == ("fp32",):
        print("no native bf16 on this CPU: fp32 only (--bf16 times the emulated bf16 too, slowly)")
    for arch, size in [("vgg16", 32), ("vgg16", 64), ("resnet18", 32)]:
        print(f"{arch} {size} px: {step_flops(arch, size) / 1e9:.3f} GFLOP per image, forward and backward")
    print(
        "2048 x 2048 matrix product: "
        + ", ".join(
            f"{p} {matmul_rate(getattr(torch, {'fp32': 'float32', 'bf16': 'bfloat16'}[p])) / 1e9:.0f} GFLOP/s"
            for p in precisions
        )
    )
    for arch, size in [("vgg16", 32), ("vgg16", 64), ("resnet18", 32)]:
        flops = step_flops(arch, size)
        rates = {p: training_rate(arch, size, bf16=p == "bf16") for p in precisions}
        print(
            f"{arch} {size} px training: "
            + ", ".join(f"{p} {r:.0f} img/s = {r * flops / 1e9:.0f} GFLOP/s" for p, r in rates.items())
        )
