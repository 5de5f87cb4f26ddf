"""How fast can this CPU train the pipeline's VGG16 at all? Prints the FLOPs of one forward and
backward pass per image (torch.utils.flop_counter), the fp32 and bf16 rate of a 2048 x 2048
matrix product, and VGG16's training rate (Adam, MSE, batch 64) at 32 px, so that the README's
whole-run bound can be checked: `.venv/bin/python tools/cpu_bound.py`."""

import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from gadlib.models import build_model


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


def training_rate(arch: str, size: int, batch: int = 64, steps: int = 6) -> float:
    model = build_model(arch, 2, size).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x, y = torch.randn(batch, 3, size, size), torch.randn(batch, 2)

    def step():
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()

    for _ in range(2):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - started)


if __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for arch, size in [("vgg16", 32), ("vgg16", 64), ("resnet18", 32)]:
        print(f"{arch} {size} px: {step_flops(arch, size) / 1e9:.3f} GFLOP per image, forward and backward")
    print(
        f"2048 x 2048 matrix product: fp32 {matmul_rate(torch.float32) / 1e9:.0f} GFLOP/s, "
        f"bf16 {matmul_rate(torch.bfloat16) / 1e9:.0f} GFLOP/s"
    )
    rate = training_rate("vgg16", 32)
    print(f"vgg16 32 px training: {rate:.0f} img/s = {rate * step_flops('vgg16', 32) / 1e9:.0f} GFLOP/s")
