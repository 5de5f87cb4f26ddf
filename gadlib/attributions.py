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


def captum_attribution(
    model: nn.Module,
    method: str,
    x: torch.Tensor,
    target: torch.Tensor | int,
    ig_steps: int = 50,
    ig_method: str = "gausslegendre",
    internal_batch_size: int | None = None,
) -> torch.Tensor:
    """One captum call: attributions (N, C, H, W) of `model` for `target` on inputs `x`."""
    check_method(method)
    model.eval()
    explainer = CAPTUM_CLASSES[method](model)
    x = x.detach().requires_grad_(True)
    if method == "integrated_gradients":
        return explainer.attribute(
            x, target=target, n_steps=ig_steps, method=ig_method, internal_batch_size=internal_batch_size
        ).detach()
    return explainer.attribute(x, target=target).detach()


def captum_maps(
    models: list[nn.Module],
    x: torch.Tensor,
    methods: list[str],
    classes=(0, 1),
    ig_steps: int = 50,
    ig_method: str = "gausslegendre",
    internal_batch_size: int | None = None,
) -> dict[str, torch.Tensor]:
    """The plain way, as a competent captum user writes it: one call per method, class and
    model, batched over all images. {method: (models, classes, N, H, W)}."""
    from .consensus import reduce_channels

    out = {}
    for method in methods:
        out[method] = torch.stack(
            [
                torch.stack(
                    [
                        reduce_channels(
                            captum_attribution(model, method, x, c, ig_steps, ig_method, internal_batch_size)
                        ).cpu()
                        for c in classes
                    ]
                )
                for model in models
            ]
        )
    return out


def smoothgrad_maps(
    model: nn.Module,
    x: torch.Tensor,
    methods: list[str],
    classes=(0, 1),
    samples: int = 5,
    noise: float = 0.15,
    ig_steps: int = 50,
    ig_method: str = "gausslegendre",
    batch_size: int = 64,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """SmoothGrad over each base method with captum's NoiseTunnel: the mean attribution over
    `samples` noisy copies (sd = noise x the input range of x), reduced over channels.
    {method: (classes, N, H, W)} on CPU."""
    from captum.attr import NoiseTunnel

    from .consensus import reduce_channels
    from .engine import inputs_that_fit

    model.eval()
    device = next(model.parameters()).device
    sd = noise * float(x.max() - x.min())
    # NoiseTunnel evaluates samples x images inputs at once, and IG all its steps of them too:
    # on CUDA both are capped by what free memory holds (at 224 px, 64 images x 5 samples x 50
    # steps would need hundreds of GB)
    fit = inputs_that_fit(model, x[:1].to(device), classes) if len(x) else None
    if fit is not None:
        batch_size = max(1, min(batch_size, fit // samples))
    out = {}
    for method in methods:
        check_method(method)
        tunnel = NoiseTunnel(CAPTUM_CLASSES[method](model))
        extra = {"n_steps": ig_steps, "method": ig_method} if method == "integrated_gradients" else {}
        if extra and fit is not None:
            extra["internal_batch_size"] = max(batch_size * samples, fit)
        per_class = []
        for c in classes:
            torch.manual_seed(seed)  # the same noise for every method and class
            chunks = []
            for i in range(0, len(x), batch_size):
                xi = x[i : i + batch_size].to(device).requires_grad_(True)
                a = tunnel.attribute(xi, nt_type="smoothgrad", nt_samples=samples, stdevs=sd, target=c, **extra)
                chunks.append(reduce_channels(a.detach()).cpu())
            per_class.append(torch.cat(chunks))
        out[method] = torch.stack(per_class)
    return out
