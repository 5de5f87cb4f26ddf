"""Training: the original classifier, and the support regressions of GAD (METHOD.md steps 1-2).

Decoded images live in memory (on the GPU when there is one) as uint8 and are normalised per
batch, so no epoch ever touches a JPEG. Mixed precision (bf16 autocast, channels_last) on CUDA,
and on the CPU when asked for (`precision="bf16"`).
"""

from __future__ import annotations

import copy
from contextlib import nullcontext

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from . import notices
from .config import PRECISIONS
from .convs import small_map_convs
from .data import Split, normalize
from .errors import GADInputError
from .models import predict_logits

# Part of every support's stamp: 2 = targets computed through the training's forward
# (models.predict_logits), so a frozen support onto its original's own logits stays the original.
TARGETS_VERSION = 2


def uses_bf16(device: torch.device, precision: str = "auto") -> bool:
    """Whether training runs under bf16 autocast: `auto` is bf16 on CUDA and fp32 on the CPU, where
    bf16 pays only on CPUs with native bf16 and would change the models that fp32 trains."""
    if precision not in PRECISIONS:
        raise GADInputError(f"unknown train precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def adam(params, lr: float, fused: bool) -> torch.optim.Adam:
    """Adam; its fused step (faster, not bit-identical to the default step) only where bf16 was
    asked for, which changes the trained models anyway. Otherwise the default step, which
    trained the committed runs (the foreach step gave the same weights, but no faster training)."""
    return torch.optim.Adam(params, lr=lr, fused=True) if fused else torch.optim.Adam(params, lr=lr)


def _batches(n: int, batch_size: int, gen: torch.Generator, shuffle: bool = True):
    order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def _fit(
    model, images, loss_of, epochs, lr, batch_size, seed, desc, flip=False, frozen=False, precision="auto"
) -> list[float]:
    """Adam over in-memory `images`, uint8 (normalised per batch) or float (the model's input as
    it is); `loss_of(outputs, idx)` gives the batch loss. With
    `frozen`, batch norm and dropout stay in eval mode (running statistics neither used from the
    batch nor updated). `precision`: see `uses_bf16`. Returns the mean loss of each epoch."""
    device, dtype = next(model.parameters()).device, next(model.parameters()).dtype
    images = images.to(device)
    bf16 = uses_bf16(device, precision)
    if bf16:  # faster bf16 convolutions (tensor cores; oneDNN on the CPU)
        model.to(memory_format=torch.channels_last)
    opt = adam(model.parameters(), lr, fused=precision == "bf16")  # auto on CUDA keeps its step
    gen = torch.Generator().manual_seed(seed)
    history = []
    bar = tqdm(total=epochs * -(-len(images) // batch_size), desc=desc, leave=False)
    # convolutions on 1 x 1 and 2 x 2 maps as linear layers: at 32 px ResNet18 trained 2.0-3.0x
    # and VGG16 1.1-1.2x faster on an AVX2-only EPYC (convs.py; benchmarks/speed.py --stage convs)
    with small_map_convs(model):
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
                x = normalize(images[idx]).to(dtype) if images.dtype == torch.uint8 else images[idx]
                if flip:  # horizontal flip of a random half of the batch
                    do = flips_on_device[step]
                    x = torch.where(do[:, None, None, None], x.flip(-1), x)
                if bf16:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext():
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
    if bf16:  # the caller gets the model in the memory format it gave (values are unchanged)
        model.to(memory_format=torch.contiguous_format)
    return history


def train_classifier(
    model: nn.Module, train: Split, epochs: int, lr: float, batch_size: int, seed: int = 0, precision: str = "auto"
) -> list[float]:
    """Cross-entropy training of the original classifier, with horizontal flips. `train` is a
    Split, or (images, labels) tensors; `precision` as in `uses_bf16`."""
    images, labels = (train.images, train.labels) if isinstance(train, Split) else train
    labels = labels.to(next(model.parameters()).device)
    return _fit(
        model,
        images,
        lambda out, idx: nn.functional.cross_entropy(out, labels[idx.to(labels.device)]),
        epochs,
        lr,
        batch_size,
        seed,
        desc="train original",
        flip=True,
        precision=precision,
    )


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(1) == labels).float().mean())


# ---------------------------------------------------------------- GAD step 1
def per_class_alphas(alpha, n_classes: int, of: str | None = None) -> torch.Tensor:
    """One support's alphas as a float tensor (n_classes,), alpha[c] for the images of class c:
    one number serves every class; a sequence gives one per class (`of`: what the classes are of,
    for the message)."""
    a = torch.as_tensor(alpha, dtype=torch.float32)
    if a.dim() == 0:
        return a.expand(n_classes).clone()
    if a.shape != (n_classes,):
        raise GADInputError(
            f"alphas {alpha!r} give {a.numel()} values for {of or f'a model with {n_classes} classes'}: "
            "give one number, or one per class"
        )
    return a


def check_pair(pair, n_classes: int) -> tuple[int, int]:
    """The classes of interest (c1, c2) of an m-class model, or a one-line error."""
    try:
        c1, c2 = (int(c) for c in pair)
        whole = all(float(c) == int(c) for c in pair)
    except (TypeError, ValueError):
        whole = False
    if not whole or c1 == c2 or not (0 <= c1 < n_classes and 0 <= c2 < n_classes):
        raise GADInputError(
            f"pair {pair!r}: give two different classes of the model's {n_classes} (0 to {n_classes - 1})"
        )
    return c1, c2


def distanced_targets(logits: torch.Tensor, labels: torch.Tensor, alpha, pair=None) -> torch.Tensor:
    """METHOD.md step 1. With `pair` = (c1, c2), as METHOD.md states it: images of class c1
    lower logit c2 by alpha_c1, images of c2 lower logit c1 by alpha_c2, and every other logit,
    and every other class's image, stays as it is (`alpha`: one number, or (alpha_c1, alpha_c2)).
    Without: for an image of class c, every other logit is lowered by alpha[c] and logit c stays
    (`alpha`: one number or one per class). With two classes both are the paper's rule: images
    of class 1 lower logit 2 by alpha_c1, images of class 2 lower logit 1 by alpha_c2."""
    labels = labels.long().to(logits.device)
    if pair is not None:
        c1, c2 = check_pair(pair, logits.shape[1])
        a1, a2 = per_class_alphas(alpha, 2, f"the pair ({c1}, {c2})").tolist()
        y = logits.clone()
        y[labels == c1, c2] -= a1
        y[labels == c2, c1] -= a2
        return y
    a = per_class_alphas(alpha, logits.shape[1]).to(logits.device)[labels]
    own = nn.functional.one_hot(labels, logits.shape[1]).bool()
    return torch.where(own, logits, logits - a[:, None].to(logits.dtype))


# ---------------------------------------------------------------- GAD step 2
def train_support(
    original: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int = 0,
    desc: str = "support",
    mode: str = "train",
    precision: str = "auto",
) -> tuple[nn.Module, list[float]]:
    """A copy of `original` regressed (MSE, no softmax) onto the distanced `targets` of `images`
    (uint8, or float model input); `mode` is "train" (batch norm on batch statistics, dropout on)
    or "frozen" (both in eval mode); `precision` as in `uses_bf16`."""
    support = copy.deepcopy(original).requires_grad_(True)  # every weight trains, even of a frozen original
    device = next(support.parameters()).device
    targets = targets.to(device)
    history = _fit(
        support,
        images,
        lambda out, idx: nn.functional.mse_loss(out, targets[idx.to(device)]),
        epochs,
        lr,
        batch_size,
        seed,
        desc=desc,
        frozen=mode == "frozen",
        precision=precision,
    )
    return support, history


def alpha_columns(alpha, n_classes: int, pair=None) -> dict:
    """One support's alphas as the models report names them, alpha_c1, alpha_c2, ...: per class,
    what its images' other logits are lowered by (as given, not float32); with a pair, 0 for the
    classes outside it, whose images stay."""
    given = [alpha] if torch.as_tensor(alpha).dim() == 0 else list(alpha)
    if pair is None:
        per_class = given * n_classes if len(given) == 1 else given
    else:
        per_class = [0.0] * n_classes
        for c, a in zip(check_pair(pair, n_classes), given * 2 if len(given) == 1 else given):
            per_class[c] = a
    return {f"alpha_c{c + 1}": float(a) for c, a in enumerate(per_class)}


def alpha_text(alpha) -> str:
    """A support's alpha as it is shown: one number where it is the same for every class, else
    one per class joined by '/'."""
    values = [float(v) for v in np.ravel(np.asarray(alpha, dtype=np.float64))]  # a number, tuple, tensor or row
    return f"{values[0]:g}" if len(set(values)) == 1 else "/".join(f"{v:g}" for v in values)


def support_report(
    original_logits: torch.Tensor, support_logits: torch.Tensor, labels: torch.Tensor, alpha, pair=None
) -> dict:
    """MSE to the distanced targets, accuracy, and per-class Spearman rank agreement of the
    support's logits with the original's, on held-out images; alpha_c1, alpha_c2, ... per class."""
    from scipy.stats import spearmanr  # here: scipy.stats takes 0.7 s to import, and most notebooks never call this

    n_classes = original_logits.shape[1]
    targets = distanced_targets(original_logits, labels, alpha, pair)  # checks alpha and pair
    row = alpha_columns(alpha, n_classes, pair)
    row["mse"] = float(nn.functional.mse_loss(support_logits, targets))
    row["accuracy"] = accuracy(support_logits, labels)
    for c in range(n_classes):
        rho = spearmanr(original_logits[:, c].numpy(), support_logits[:, c].numpy()).statistic
        row[f"spearman_logit{c + 1}"] = float(np.nan_to_num(rho))
    return row


# Below this Spearman of one logit with the original's, on held-out images, a support no longer
# keeps the order of the original's activations, the paper's premise (METHOD.md step 2). Where
# it fires in the committed runs, every original is below the chance warning's 0.65 (question 7).
ORDER_KEPT = 0.5


def family_report(
    original: nn.Module, supports: list[nn.Module], alphas: list, images: torch.Tensor, labels: torch.Tensor, pair=None
) -> pd.DataFrame:
    """METHOD.md step 2's report on held-out `images`: the original's accuracy (its alphas 0),
    then one `support_report` row per support, in the order of `alphas`."""
    labels = torch.as_tensor(labels).long()
    z = predict_logits(original, images)
    rows = [{**{f"alpha_c{c + 1}": 0.0 for c in range(z.shape[1])}, "accuracy": accuracy(z, labels)}]
    rows += [support_report(z, predict_logits(s, images), labels, a, pair) for a, s in zip(alphas, supports)]
    return pd.DataFrame(rows)


def lowest_spearman(report: pd.DataFrame) -> pd.Series:
    """Per row of a models report (`family_report`, models.csv), its lowest Spearman over the
    logits; NaN for the original's row."""
    return report.filter(regex=r"^spearman_logit\d+$").min(axis=1, skipna=False)


def model_names(report: pd.DataFrame) -> pd.Series:
    """Which model each row of a models report is (`family_report`, models.csv, one architecture's
    rows after another's): "original" for an original's row, the one without Spearman values (a
    support's alphas may be 0 too), else "support <alpha>", one alpha per class where they differ."""
    alphas = report.filter(regex=r"^alpha_c\d+$").to_numpy()
    names = pd.Series([f"support {alpha_text(a)}" for a in alphas], index=report.index)
    return names.mask(lowest_spearman(report).isna(), "original")


def warn_if_order_lost(report: pd.DataFrame, what: str = "") -> None:
    """One warning naming the supports whose logits do not keep the original's order (ORDER_KEPT)."""
    low = lowest_spearman(report)
    lost = report[low < ORDER_KEPT]
    if lost.empty:
        return
    alphas = ", ".join(alpha_text(row) for row in lost.filter(regex=r"^alpha_c\d+$").to_numpy())
    notices.warn(
        f"THE SUPPORTS{' ' + what if what else ''} FOR ALPHA {alphas} DO NOT KEEP THE ORDER OF THE ORIGINAL'S "
        f"LOGITS: Spearman down to {low.min():.2f} on the held-out images (below {ORDER_KEPT}), so GAD's "
        "consensus intersects maps of models that rank the images unlike the original. An original whose "
        "logits hardly vary across images gives targets that follow the labels more than it: train it further, "
        "or let `python -m gadlib.alpha_selection` choose alphas that keep the order."
    )


__all__ = [
    "accuracy",
    "alpha_columns",
    "alpha_text",
    "check_pair",
    "distanced_targets",
    "family_report",
    "lowest_spearman",
    "model_names",
    "per_class_alphas",
    "predict_logits",
    "support_report",
    "train_classifier",
    "train_support",
    "uses_bf16",
    "warn_if_order_lost",
]
