"""The plain way to compute the five methods: one captum call per method, target and model,
batched over images. Tests check gadlib's attributions against it and the benchmark times
gadlib against it; the pipeline never calls it."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from gadlib.attributions import captum_class, check_method
from gadlib.consensus import reduce_channels

# captum says so on every Guided Backprop and Deconvolution call (it removes its hooks after each):
# in a benchmark's log, a line per timed call that would push the tables out of a short log tail
warnings.filterwarnings("ignore", "Setting backward hooks on ReLU activations", UserWarning)


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
    explainer = captum_class(method)(model)
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


def captum_smoothgrad(
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
    internal_batch_size: int | None = None,
) -> dict[str, torch.Tensor]:
    """SmoothGrad the plain way, as gadlib computed it before its engine did: captum's
    NoiseTunnel per method and class (sd = noise x the input range of x), the global generator
    seeded for each, images in chunks of `batch_size`, convolutions on 1 x 1 and 2 x 2 maps as
    linear layers (gadlib/convs.py). Without `internal_batch_size`, IG evaluates all its steps of
    samples x batch_size inputs in one pass. {method: (classes, N, H, W)} on CPU."""
    from captum.attr import NoiseTunnel

    from gadlib.convs import small_map_convs

    model.eval()
    sd = noise * float(x.max() - x.min())
    out = {}
    with small_map_convs(model):
        for method in methods:
            check_method(method)
            tunnel = NoiseTunnel(captum_class(method)(model))
            extra = {}
            if method == "integrated_gradients":
                extra = {"n_steps": ig_steps, "method": ig_method, "internal_batch_size": internal_batch_size}
            per_class = []
            for c in classes:
                torch.manual_seed(seed)  # the same noise for every method and class
                chunks = [
                    tunnel.attribute(
                        x[i : i + batch_size].detach().requires_grad_(True),
                        nt_type="smoothgrad",
                        nt_samples=samples,
                        stdevs=sd,
                        target=c,
                        **extra,
                    )
                    for i in range(0, len(x), batch_size)
                ]
                per_class.append(reduce_channels(torch.cat(chunks).detach()).cpu())
            out[method] = torch.stack(per_class)
    return out
