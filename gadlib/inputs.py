"""The checks of what a user hands to `GAD` (gadlib/gad.py): images, classes and targets,
alphas, supports, threshold settings. Each takes what it can use (numpy numbers and arrays,
tensors, sequences) and refuses the rest with one line that names the input and what to give."""

from __future__ import annotations

import math
import numbers
import re

import numpy as np
import torch
from torch import nn

from . import notices
from .config import SUPPORT_MODES, THRESHOLD_RULES
from .errors import GADInputError, negative_alpha


def check_images(x, what: str) -> torch.Tensor:
    """A batch of images (N, C, H, W) as a tensor, or a one-line error naming `what`."""
    if not isinstance(x, torch.Tensor):
        raise GADInputError(f"{what} is a {type(x).__name__}: give a torch.Tensor of images (N, C, H, W)")
    if x.dim() != 4:
        hint = " (one image: add a batch dimension, x[None])" if x.dim() == 3 else ""
        raise GADInputError(f"{what} has shape {tuple(x.shape)}: give a batch of images (N, C, H, W){hint}")
    if len(x) == 0:
        raise GADInputError(f"{what} holds no images")
    return x


def check_classes(logits: torch.Tensor, classes: torch.Tensor, what: str = "target") -> None:
    """The model must give two or more logits per image, and every class asked for (in the
    argument named `what`) must exist."""
    if logits.dim() != 2 or logits.shape[1] < 2:
        raise GADInputError(
            f"the model gives outputs of shape {tuple(logits.shape)}: GAD needs a classifier with "
            "two or more logits per image (N, classes)"
        )
    bad = classes[(classes < 0) | (classes >= logits.shape[1])]
    if len(bad):
        m = logits.shape[1]
        raise GADInputError(
            f"{what} holds class {int(bad[0])}, which is not one of the model's {m} classes (0 to {m - 1})"
        )


# torch's words for inputs of the wrong channels or size (convolutions, linear layers, views)
SHAPE_ERROR = re.compile(r"channels|shape|size|mat1 and mat2|dimension", re.IGNORECASE)


def model_outputs(model: nn.Module, x: torch.Tensor, what: str, first: int) -> torch.Tensor:
    """The model's eval-mode logits for the first `first` images of `what` (`models.predict_logits`),
    the first time GAD runs it on a user's inputs: a one-line error where it cannot take them
    (other channels or size than it was trained on) instead of the traceback from inside the model."""
    from .models import predict_logits

    try:
        return predict_logits(model, x[:first])
    except RuntimeError as err:
        cause = " ".join(str(err).split())
        # only a shape error is the inputs' (out of memory, a bug in the model: raised as they are)
        if isinstance(err, torch.OutOfMemoryError) or not SHAPE_ERROR.search(cause):
            raise
        cause = cause if len(cause) <= 160 else cause[:157] + "..."
        raise GADInputError(
            f"the model fails on {what} of shape {tuple(x.shape)} ({cause}): give images with the channels "
            "and size it was trained on"
        ) from None


def short_repr(value) -> str:
    """repr of a value for a one-line message: one line, at most 60 characters."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def is_real(value) -> bool:
    """A real number: Python's, numpy's, or a one-value array or tensor; not a bool."""
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and value.dtype != torch.bool and not value.is_complex()
    if isinstance(value, np.ndarray):
        return value.size == 1 and value.dtype.kind in "iuf"
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_whole(value) -> bool:
    return is_real(value) and math.isfinite(float(value)) and float(value).is_integer()


def check_threshold(rule: str, q: float, tau: float, what: str = "threshold") -> tuple[float, float]:
    """An importance rule (METHOD.md step 3) with its q and tau in (0, 1], as Python floats (numpy
    numbers would not load back from GAD.save's file), or a one-line error."""
    if rule not in THRESHOLD_RULES:
        raise GADInputError(f"unknown {what} rule {short_repr(rule)}: choose {' or '.join(THRESHOLD_RULES)}")
    for name, value in (("q", q), ("tau", tau)):
        if not is_real(value) or not 0 < float(value) <= 1:
            raise GADInputError(f"{what} {name} must be a number in (0, 1], got {short_repr(value)}")
    return float(q), float(tau)


def check_alphas(alphas) -> list:
    """One entry per support, each a number or one number per class (a list, tuple, array or
    tensor of them), returned as Python floats and lists of them (numpy values would not load
    back from GAD.save's file); or a one-line error."""

    def listed(a):  # a list of the entries of a sequence, array or tensor; None for a single value
        if isinstance(a, (str, bytes)) or is_real(a) or (isinstance(a, (torch.Tensor, np.ndarray)) and a.ndim == 0):
            return None
        try:
            return list(a.tolist() if isinstance(a, (torch.Tensor, np.ndarray)) else a)
        except TypeError:
            return None

    out = listed(alphas)
    if out is None:
        raise GADInputError(
            f"alphas must be a list, one entry per support (e.g. [2, 4, 6, 8]), got {short_repr(alphas)}"
        )
    if not out:
        raise GADInputError("alphas is empty: GAD needs at least one support (the paper uses 2, 4, 6, 8)")
    plain = []
    for a in out:
        values = listed(a)
        if not (values or values is None) or not all(
            is_real(v) and math.isfinite(float(v)) for v in (values if values is not None else [a])
        ):
            raise GADInputError(
                f"alpha {short_repr(a)} is not a number, nor one number per class: e.g. alphas=[2, 4, 6, 8]"
            )
        plain.append(float(a) if values is None else [float(v) for v in values])
        if any(v < 0 for v in (plain[-1] if values is not None else [plain[-1]])):
            raise negative_alpha(short_repr(a))
    return plain


def check_support(model: nn.Module, support, i: int) -> None:
    """A support is a copy of the model (METHOD.md step 2): a module whose parameters have the
    model's shapes, in order (names may differ: torch.compile or DataParallel wrap them)."""
    if not isinstance(support, nn.Module):
        raise GADInputError(f"support {i} is a {type(support).__name__}: give models of the model's architecture")
    mine = [tuple(p.shape) for p in model.parameters()]
    theirs = [tuple(p.shape) for p in support.parameters()]
    if mine != theirs:
        if len(mine) != len(theirs):
            differs = f"{len(theirs)} parameter tensors against the model's {len(mine)}"
        else:
            j = next(j for j, (a, b) in enumerate(zip(mine, theirs)) if a != b)
            differs = f"parameter {j} has shape {theirs[j]} against the model's {mine[j]}"
        raise GADInputError(
            f"support {i} is not a copy of the model's architecture ({differs}): "
            "give supports trained from the model, e.g. by GAD.fit"
        )


def class_indices(values, what: str) -> torch.Tensor:
    """Class indices as a long tensor on the CPU (bools as 0 and 1); a one-line error for values
    that are not whole numbers."""
    try:
        t = torch.as_tensor(values)
    except (TypeError, ValueError, RuntimeError):
        raise GADInputError(f"{what} {short_repr(values)} is not a class index: give whole numbers") from None
    if t.is_complex() or (t.is_floating_point() and not torch.equal(t, t.round())):
        raise GADInputError(f"{what} must be whole class numbers, got {short_repr(values)}")
    return t.long().cpu()


def target_classes(target, n: int) -> torch.Tensor:
    t = class_indices(target, "target")
    if t.dim() == 0:
        return t.expand(n).clone()
    if t.shape != (n,):
        raise GADInputError(f"target of shape {tuple(t.shape)} for {n} images: give one class, or one per image")
    return t


def labelled_images(images, labels, model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """`GAD.fit`'s and `GAD.report`'s images (uint8 ones as RGB, float ones as the model takes
    them) and one class index for each."""
    images = check_images(images, "images")
    if images.dtype == torch.uint8 and images.shape[1] != 3:  # ImageNet normalisation is per RGB channel
        hint = ": channels last? give images.permute(0, 3, 1, 2)" if images.shape[-1] == 3 else ""
        raise GADInputError(
            f"images are uint8 of shape {tuple(images.shape)}: uint8 images are normalised as RGB, "
            f"(N, 3, H, W){hint}; other inputs: give them as the model takes them, float"
        )
    if images.dtype != torch.uint8:  # as explain() takes them: finite, in the model's dtype
        images = model_inputs(images, model, "images", ", or uint8 RGB images")
    labels = class_indices(labels, "labels")  # beside the logits, which predict_logits gives on the CPU
    if labels.shape != (len(images),):
        raise GADInputError(f"labels of shape {tuple(labels.shape)} for {len(images)} images: give one class each")
    return images, labels


def check_count(name: str, value) -> int:
    """A count (epochs, a batch size, steps, samples) as an int, or a one-line error."""
    if not is_whole(value) or value < 1:
        raise GADInputError(f"{name} must be a whole number >= 1, got {short_repr(value)}")
    return int(value)


def fit_settings(epochs, batch_size, lr, mode: str) -> tuple[int, int]:
    """`GAD.fit`'s settings; (epochs, batch_size) as ints."""
    epochs, batch_size = check_count("epochs", epochs), check_count("batch_size", batch_size)
    if not is_real(lr) or not lr > 0:
        raise GADInputError(f"lr must be a number > 0, got {short_repr(lr)}")
    if mode not in SUPPORT_MODES:
        raise GADInputError(f"unknown support mode {short_repr(mode)}: choose one of {', '.join(SUPPORT_MODES)}")
    return epochs, batch_size


def model_inputs(x: torch.Tensor, model: nn.Module, what: str = "inputs", other: str = "") -> torch.Tensor:
    """Images as the model takes them: finite floats, cast to the model's dtype (float64 images
    for a float32 model, say). `other` names what else the caller takes (GAD.fit: uint8)."""
    if not x.is_floating_point():
        raise GADInputError(f"{what} are {x.dtype} images: give the model's input (normalised float tensors){other}")
    if not torch.isfinite(x).all():
        raise GADInputError(f"{what} hold NaN or infinite values: what GAD makes of them would mean nothing")
    # normalised images stay within a few units of 0; whole numbers up to 255 are 8-bit pixels
    if len(x) and x.min() >= 0 and 20 < x.max() <= 255 and torch.equal(x, x.round()):
        advice = "give uint8 images to fit and normalize(...) them for the model" if x.shape[1] == 3 else "scale them"
        notices.warn(f"{what} are whole-number floats up to 255, like raw 8-bit pixels: the model gets them as "
                     f"they are; {advice}, unless it takes raw pixels")  # fmt: skip
    return x.to(next(model.parameters()).dtype)
