"""The five gradient methods, computed with captum, reduced over channels, stored once.

`captum_attribution` is the plain way (one captum call per method, target and model, batched
over images). `attribution_maps` is what the pipeline uses: it goes through the engine in
`gadlib.engine`, which keeps captum's definitions but shares work between classes and models.
"""
from __future__ import annotations

import torch
from captum.attr import Deconvolution, GuidedBackprop, InputXGradient, IntegratedGradients, Saliency
from torch import nn

from .config import METHODS
from .errors import GADInputError

CAPTUM_CLASSES = {
    "saliency": Saliency,
    "deconvolution": Deconvolution,
    "input_x_gradient": InputXGradient,
    "guided_backprop": GuidedBackprop,
    "integrated_gradients": IntegratedGradients,
}


def check_method(method: str) -> None:
    if method not in METHODS:
        raise GADInputError(f"unknown attribution method {method!r}: choose one of {', '.join(METHODS)}")


def captum_attribution(model: nn.Module, method: str, x: torch.Tensor, target: torch.Tensor | int,
                       ig_steps: int = 50, ig_method: str = "gausslegendre",
                       internal_batch_size: int | None = None) -> torch.Tensor:
    """One captum call: attributions (N, C, H, W) of `model` for `target` on inputs `x`."""
    check_method(method)
    model.eval()
    explainer = CAPTUM_CLASSES[method](model)
    x = x.detach().requires_grad_(True)
    if method == "integrated_gradients":
        return explainer.attribute(x, target=target, n_steps=ig_steps, method=ig_method,
                                   internal_batch_size=internal_batch_size).detach()
    return explainer.attribute(x, target=target).detach()


def captum_maps(models: list[nn.Module], x: torch.Tensor, methods: list[str], classes=(0, 1),
                ig_steps: int = 50, ig_method: str = "gausslegendre",
                internal_batch_size: int | None = None) -> dict[str, torch.Tensor]:
    """The plain way, as a competent captum user writes it: one call per method, class and
    model, batched over all images. {method: (models, classes, N, H, W)}."""
    from .consensus import reduce_channels

    out = {}
    for method in methods:
        out[method] = torch.stack([
            torch.stack([
                reduce_channels(captum_attribution(model, method, x, c, ig_steps, ig_method, internal_batch_size)).cpu()
                for c in classes
            ])
            for model in models
        ])
    return out
