"""The paper's metrics (RC, RS) and ground-truth scores, per image; `gadlib.tables` lays them out."""

from __future__ import annotations

import torch

from .attributions import for_evaluation
from .data import IMAGENET_MEAN, IMAGENET_STD
from .errors import GADInputError


# ---------------------------------------------------------------- complexity
def area(masks: torch.Tensor) -> torch.Tensor:
    return masks.flatten(-2).sum(-1).double()


def rc(hull_gad: torch.Tensor, hull_orig: torch.Tensor) -> torch.Tensor:
    """RC = area(H_GAD) / area(H_orig); NaN where the original hull is empty."""
    a_orig = area(hull_orig)
    return torch.where(a_orig > 0, area(hull_gad) / a_orig.clamp(min=1), torch.nan)


# ---------------------------------------------------------------- sensitivity
def occlusion_fill(kind: str, channels: int = 3) -> torch.Tensor:
    """Value of an occluded pixel in the model's (normalised) input space: 0 ("zero"), or black
    under ImageNet normalisation ("black", three channels)."""
    if kind == "zero":
        return torch.zeros(1, channels, 1, 1)
    if kind == "black":
        if channels != 3:
            raise GADInputError(f"occlusion fill 'black' is for ImageNet-normalised RGB, not {channels} channels")
        return (0 - IMAGENET_MEAN) / IMAGENET_STD
    raise GADInputError(f"unknown occlusion fill {kind!r}: choose zero or black")


@torch.no_grad()
def unoccluded_logits(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """N(I): the model's logits (N, classes) on the whole images, in RS's batches."""
    model = for_evaluation(model)
    device = next(model.parameters()).device
    return torch.cat([model(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)])


@torch.no_grad()
def rs(
    model: torch.nn.Module,
    x: torch.Tensor,
    masks: torch.Tensor,
    target: torch.Tensor | int,
    fill: str = "zero",
    batch_size: int = 256,
    logits: torch.Tensor | None = None,
) -> torch.Tensor:
    """RS(I, M, a) = |N_a(I) - N_a(I * (1 - M))| / sum(M), for a batch.

    x: (N, 3, H, W) normalised images; masks: (K, N, H, W), K masks per image; target: class a
    per image (N,) or one int; logits: `unoccluded_logits(model, x, batch_size)` when the caller
    has them (it is the same for every mask). Returns (K, N); NaN where a mask is empty."""
    model = for_evaluation(model)
    device = next(model.parameters()).device
    k, n = masks.shape[:2]
    target = torch.as_tensor(target).expand(n)
    fill_value = occlusion_fill(fill, x.shape[1]).to(device)
    if logits is None:
        logits = unoccluded_logits(model, x, batch_size)
    elif len(logits) != n:
        raise ValueError(f"rs: logits for {len(logits)} images given with {n} images")
    base = logits.gather(1, target[:, None]).squeeze(1)
    # the images, masks and targets go to the model's device once, not once per batch: on CUDA a
    # host-side gather and copy of each batch's images would leave the GPU waiting
    flat_masks = masks.reshape(k * n, *masks.shape[-2:]).to(device)
    x, target_on = x.to(device), target.to(device)
    img_idx = torch.arange(n, device=device).repeat(k)
    out = []
    for i in range(0, k * n, batch_size):
        idx = img_idx[i : i + batch_size]
        occluded = torch.where(flat_masks[i : i + batch_size, None], fill_value, x[idx])
        out.append(model(occluded).float().gather(1, target_on[idx][:, None]).squeeze(1))
    # read back once: a copy to the host per batch would make the host wait for the GPU each time
    occluded_logit = torch.cat(out).cpu().view(k, n)
    size = area(masks)
    return torch.where(size > 0, (base[None] - occluded_logit).abs().double() / size.clamp(min=1), torch.nan)


# ---------------------------------------------------------------- ground truth
def mass_inside(maps: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Share of a map's attribution mass inside the ground-truth mask (NaN for an all-zero map)."""
    total = maps.flatten(-2).sum(-1).double()
    inside = (maps * truth).flatten(-2).sum(-1).double()
    return torch.where(total > 0, inside / total.clamp(min=1e-30), torch.nan)


def pointing_hit(maps: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Pointing game: does the map's largest pixel fall on the object? NaN for an all-zero map
    (an empty consensus), which points nowhere: argmax would pick its first pixel."""
    flat = maps.flatten(-2)
    hit = truth.flatten(-2).gather(-1, flat.argmax(-1, keepdim=True)).squeeze(-1).double()
    return torch.where(flat.amax(-1) > 0, hit, torch.nan)


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Jaccard index per mask (..., H, W); NaN where both are empty (a score of nothing)."""
    union = area(a | b)
    return torch.where(union > 0, area(a & b) / union.clamp(min=1), torch.nan)


def agreement(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Jaccard index per mask, as agreement of two computations of one mask: 1 where both are
    empty (they agree)."""
    return iou(a, b).nan_to_num(1.0)
