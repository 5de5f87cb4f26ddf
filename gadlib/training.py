"""Training: the original classifier, and the support regressions of GAD (METHOD.md steps 1-2).

Decoded images live in memory (on the GPU when there is one) as uint8 and are normalised per
batch, so no epoch ever touches a JPEG. Mixed precision (bf16) on CUDA.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn
from tqdm.auto import tqdm

from .data import Split, normalize
from .models import predict_logits


def _autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def _batches(n: int, batch_size: int, gen: torch.Generator, shuffle: bool = True):
    order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def _fit(model, images, loss_of, epochs, lr, batch_size, seed, desc, flip=False, frozen=False) -> list[float]:
    """Adam over in-memory uint8 `images`; `loss_of(outputs, idx)` gives the batch loss. With
    `frozen`, batch norm and dropout stay in eval mode (running statistics neither used from the
    batch nor updated). Returns the mean loss of each epoch."""
    device = next(model.parameters()).device
    images = images.to(device)
    if device.type == "cuda":  # faster convolutions with bf16 on tensor cores
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    history = []
    bar = tqdm(total=epochs * -(-len(images) // batch_size), desc=desc, leave=False)
    for _ in range(epochs):
        model.train(not frozen)
        # the loss is summed on the device (float64, as Python floats summed it before): reading
        # it every step would make the host wait for the GPU
        total, count = torch.zeros((), dtype=torch.float64, device=device), 0
        # the epoch's order and flips are drawn on the CPU (the same generator calls as always)
        # and copied to the device once: a copy per step would make the host wait for the GPU
        batches = _batches(len(images), batch_size, gen)
        flips = [torch.rand(len(b), generator=gen) < 0.5 for b in batches] if flip else None
        on_device = torch.cat(batches).to(device).split([len(b) for b in batches])
        flips_on_device = torch.cat(flips).to(device).split([len(b) for b in batches]) if flip else None
        for step, idx in enumerate(on_device):
            x = normalize(images[idx])
            if flip:  # horizontal flip of a random half of the batch
                do = flips_on_device[step]
                x = torch.where(do[:, None, None, None], x.flip(-1), x)
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(device):
                loss = loss_of(model(x).float(), idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach().double() * len(idx)
            count += len(idx)
            bar.update()
        history.append(float(total) / count)
        bar.set_postfix(loss=f"{history[-1]:.4f}")
    bar.close()
    model.eval()
    return history


def train_classifier(
    model: nn.Module, train: Split, epochs: int, lr: float, batch_size: int, seed: int = 0
) -> list[float]:
    """Cross-entropy training of the original classifier, with horizontal flips."""
    labels = train.labels.to(next(model.parameters()).device)
    return _fit(
        model,
        train.images,
        lambda out, idx: nn.functional.cross_entropy(out, labels[idx.to(labels.device)]),
        epochs,
        lr,
        batch_size,
        seed,
        desc="train original",
        flip=True,
    )


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(1) == labels).float().mean())


# ---------------------------------------------------------------- GAD step 1
def distanced_targets(
    logits: torch.Tensor, labels: torch.Tensor, alpha_c1: float, alpha_c2: float, c1: int = 0, c2: int = 1
) -> torch.Tensor:
    """METHOD.md step 1: for images of c1 lower logit c2 by alpha_c1; for images of c2 lower
    logit c1 by alpha_c2. Every other logit stays as it is."""
    y = logits.clone()
    y[labels == c1, c2] -= alpha_c1
    y[labels == c2, c1] -= alpha_c2
    return y


# ---------------------------------------------------------------- GAD step 2
def train_support(
    original: nn.Module,
    train: Split,
    targets: torch.Tensor,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int = 0,
    desc: str = "support",
    mode: str = "train",
) -> tuple[nn.Module, list[float]]:
    """A copy of `original` regressed (MSE, no softmax) onto the distanced `targets`; `mode` is
    "train" (batch norm on batch statistics, dropout on) or "frozen" (both in eval mode)."""
    support = copy.deepcopy(original)
    device = next(support.parameters()).device
    targets = targets.to(device)
    history = _fit(
        support,
        train.images,
        lambda out, idx: nn.functional.mse_loss(out, targets[idx.to(device)]),
        epochs,
        lr,
        batch_size,
        seed,
        desc=desc,
        frozen=mode == "frozen",
    )
    return support, history


def support_report(
    original_logits: torch.Tensor, support_logits: torch.Tensor, labels: torch.Tensor, alpha_c1: float, alpha_c2: float
) -> dict:
    """MSE to the distanced targets, accuracy, and per-class Spearman rank agreement of the
    support's logits with the original's, on held-out images."""
    targets = distanced_targets(original_logits, labels, alpha_c1, alpha_c2)
    row = {
        "alpha_c1": alpha_c1,
        "alpha_c2": alpha_c2,
        "mse": float(nn.functional.mse_loss(support_logits, targets)),
        "accuracy": accuracy(support_logits, labels),
    }
    for c in range(original_logits.shape[1]):
        rho = spearmanr(original_logits[:, c].numpy(), support_logits[:, c].numpy()).statistic
        row[f"spearman_logit{c + 1}"] = float(np.nan_to_num(rho))
    return row


__all__ = [
    "accuracy",
    "distanced_targets",
    "predict_logits",
    "support_report",
    "train_classifier",
    "train_support",
]
