"""Convex-hull masks (scikit-image), defined for every input: an empty set gives an empty
hull, one pixel gives that pixel, collinear pixels give the line between them."""
from __future__ import annotations

import numpy as np
import torch
from skimage.morphology import convex_hull_image
from tqdm.auto import tqdm


def hull_mask(mask: np.ndarray) -> np.ndarray:
    """Filled convex hull (boundary included) of the true pixels of one 2-D mask."""
    if not mask.any():
        return np.zeros_like(mask, dtype=bool)
    return convex_hull_image(mask)


def hull_masks(masks: torch.Tensor, desc: str | None = None) -> torch.Tensor:
    """Hulls of a batch of masks (..., H, W). Qhull works one polygon at a time, so this is the
    one place with a loop over maps."""
    flat = masks.reshape(-1, *masks.shape[-2:]).cpu().numpy()
    out = np.zeros_like(flat, dtype=bool)
    for i in tqdm(range(len(flat)), desc=desc, leave=False, disable=desc is None):
        out[i] = hull_mask(flat[i])
    return torch.from_numpy(out).view(masks.shape)
