"""The pipeline's attributions: a fast engine with captum's definitions of the five methods.

What it does differently from calling captum once per method, class and model:
- one forward pass serves both target classes (two backward passes on the kept graph), and one
  plain-gradient pass serves both Saliency (|g|) and Gradient x Input (x * g);
- Guided Backprop and Deconvolution swap each ReLU for a module with the modified backward
  rule (the rule captum's hooks apply) instead of hooking every call;
- Integrated Gradients evaluates all interpolation steps of a chunk of images in large internal
  batches, with captum's own step sizes and points (Gauss-Legendre by default);
- batch norm is folded into the convolutions (eval mode), and weights never get gradients;
- bf16 autocast for the methods the caller names (`gadlib.precision` decides which, once for
  a whole model family); channels_last on CUDA;
- each model is prepared once and kept while its weights are unchanged, so calling once per
  method costs no more than one call for all methods;
- on CUDA the image chunk and IG's internal batch are capped by what free memory holds, so no
  setting or image size runs out of memory.
Results agree with plain captum (`benchmarks/captum_reference.py`, checked by
tests/test_attributions.py). SmoothGrad, a control of notebook 07, runs on the engine too, with
the noise captum's NoiseTunnel draws (tests/test_controls.py compares the two).
"""

from __future__ import annotations

import collections
import copy
import itertools
import weakref
from contextlib import contextmanager, nullcontext

import torch
from torch import nn
from tqdm.auto import tqdm

from .config import METHODS
from .consensus import important, reduce_channels
from .convs import plain_convs, use_small_map_convs
from .errors import GADInputError
from .seeding import seeded

GRADIENT_METHODS = {"saliency", "input_x_gradient"}  # one pass serves both, so one precision

CAPTUM_NAMES = {
    "saliency": "Saliency",
    "deconvolution": "Deconvolution",
    "input_x_gradient": "InputXGradient",
    "guided_backprop": "GuidedBackprop",
    "integrated_gradients": "IntegratedGradients",
}


def check_method(method: str) -> None:
    if method not in METHODS:
        raise GADInputError(f"unknown attribution method {method!r}: choose one of {', '.join(METHODS)}")


def captum_class(method: str) -> type:
    """captum's class of one of the five methods. captum is imported here, on first use, not with
    this module: it was 0.2-0.3 s of every notebook kernel's start, and most notebooks only read
    maps (notebooks 03 and 07 now import it in their cell of work, not in the warm-up)."""
    import captum.attr

    check_method(method)
    return getattr(captum.attr, CAPTUM_NAMES[method])


class _ReLURule(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, rule):
        ctx.save_for_backward(x)
        ctx.rule = rule
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if ctx.rule == "guided":  # captum GuidedBackprop: relu of the ReLU's usual input gradient
            return (grad * (x > 0)).clamp(min=0), None
        return grad.clamp(min=0), None  # deconvolution: relu of the output gradient


class SwitchableReLU(nn.Module):
    """ReLU whose backward rule is plain, guided or deconvolution, chosen by `rule`. The plain
    rule is torch.relu, nn.ReLU's own, whatever torch's version (no gradient where the input is
    exactly 0, as in the model captum differentiates). In the torch the project pins it gives the
    values and gradients of `clamp(min=0)`, used before, the one at 0 included, with fewer
    temporaries: the engine 1.11-1.16x faster on the CPU with memory kept (benchmarks/README.md)."""

    def __init__(self):
        super().__init__()
        self.rule = "plain"

    def forward(self, x):
        return torch.relu(x) if self.rule == "plain" else _ReLURule.apply(x, self.rule)


# The layer types whose batch norm is folded into their weights: FX's `fuse` patterns.
FOLDABLE = {nn.Conv1d: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d, nn.Conv3d: nn.BatchNorm3d, nn.Linear: nn.BatchNorm1d}


def fold_pairs(model: nn.Module) -> list[tuple[str, str]] | None:
    """(layer, batch norm) names that FX's `fuse` folds, in its order: a Conv1d/2d/3d or Linear
    (exactly that class) whose output goes only to a batch norm of the matching kind with running
    statistics, the graph rewired after each fold as `fuse` does (so a second batch norm after
    the first folds too). [] for a model FX cannot trace (it keeps its batch norms). None where
    folding by module name could differ from `fuse`: a layer or batch norm called at more than
    one place or registered under more than one name, a batch norm whose tensors the forward
    pass also reads, or a Linear whose batch norm `fuse` refuses (other features)."""
    from torch import fx

    try:
        graph = fx.Tracer().trace(model)
    except Exception:
        return []
    modules = dict(model.named_modules())
    names = collections.Counter(id(m) for _, m in model.named_modules(remove_duplicate=False))
    calls = collections.Counter(node.target for node in graph.nodes if node.op == "call_module")
    read = {node.target.rpartition(".")[0] for node in graph.nodes if node.op == "get_attr"}
    pairs = []
    for layer_type, bn_type in FOLDABLE.items():  # fuse's order: one pattern after the other
        for node in list(graph.nodes):
            prev = node.args[0] if node.args else None
            if node.op != "call_module" or not isinstance(prev, fx.Node) or prev.op != "call_module":
                continue
            layer, bn = modules.get(prev.target), modules.get(node.target)
            if type(layer) is not layer_type or type(bn) is not bn_type:
                continue
            if len(prev.users) > 1 or not bn.track_running_stats:
                continue
            if max(calls[prev.target], calls[node.target], names[id(layer)], names[id(bn)]) > 1:
                return None
            if node.target in read:  # swapped for Identity, it would lose what the forward reads
                return None
            if isinstance(layer, nn.Linear) and bn.num_features not in (1, layer.out_features):
                return None  # fuse refuses it (fuse_linear_bn_eval); the weights alone would broadcast
            pairs.append((prev.target, node.target))
            node.replace_all_uses_with(prev)
            graph.erase_node(node)
    return pairs


def _copy_sharing_weights(model: nn.Module) -> nn.Module:
    """A deep copy whose parameters are new, frozen `Parameter`s over the same storage (and whose
    buffers are the same tensors): the copy's structure can change without copying the weights.
    Folding writes new tensors, so the model's own weights are never changed."""
    memo: dict[int, torch.Tensor] = {}
    for t in itertools.chain(model.parameters(), model.buffers()):
        memo[id(t)] = nn.Parameter(t.detach(), requires_grad=False) if isinstance(t, nn.Parameter) else t
    return copy.deepcopy(model, memo)


def _folded(model: nn.Module, device: torch.device) -> nn.Module:
    """An eval-mode copy of `model` on `device` with its batch norms folded as FX's `fuse` folds
    them, without `fuse`'s copy of every weight and its generated module where the model allows
    (`fold_pairs`), else through `fuse` itself; a model `fuse` fails on keeps its batch norms."""
    from torch.nn.utils.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights

    m = plain_convs(_copy_sharing_weights(model).eval().to(device))  # a copy made inside small_map_convs
    pairs = fold_pairs(m)
    if pairs is not None:
        try:
            for name, bn_name in pairs:
                layer, bn = m.get_submodule(name), m.get_submodule(bn_name)
                fold = fuse_linear_bn_weights if isinstance(layer, nn.Linear) else fuse_conv_bn_weights
                layer.weight, layer.bias = fold(
                    layer.weight, layer.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
                )
            for _, bn_name in pairs:
                m.set_submodule(bn_name, nn.Identity())
            return m
        except Exception:  # a fold fuse refuses too (a Linear's batch norm over another axis)
            pass
    from torch.fx.experimental.optimization import fuse

    m = plain_convs(copy.deepcopy(model).eval().to(device))
    try:
        return fuse(m)  # fuse copies m first, so a failure leaves m as it was
    except Exception:
        return m


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    """An eval-mode copy with batch norm folded into the layer before it, switchable ReLUs,
    frozen weights, on `device`. The same arithmetic as FX's `fuse` (tests/test_attributions.py
    compares the two), mostly without its copy of every weight and its generated module
    (`benchmarks/speed.py --stage preparation`, three runs on a 2-core CPU: 2.5-3.6x faster for
    ResNet18 and 19-111x for VGG16 at 224 px, 1.3-2.0x and 4.4-15x at 32 px; benchmarks/README.md)."""
    m = _folded(model, device)
    for name, child in list(m.named_modules()):
        if isinstance(child, nn.ReLU):
            m.set_submodule(name, SwitchableReLU())
    for p in m.parameters():
        p.requires_grad_(False)
    return use_small_map_convs(m)  # after folding, which matches plain nn.Conv2d only


_PREPARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def prepared(model: nn.Module, device: torch.device) -> nn.Module:
    """`prepare_model`, cached per model while its weights are unchanged: the key holds each
    parameter's and buffer's storage and in-place version counter (bumped by optimiser steps,
    load_state_dict and in-place tensor ops). Changes that bypass the counter (writes through
    `.data`, swapping a module without weights) are not seen: call `clear_prepared()` after them."""
    key = (str(device), tuple((t.data_ptr(), t._version) for t in itertools.chain(model.parameters(), model.buffers())))
    hit = _PREPARED.get(model)
    if hit is not None and hit[0] == key:
        return hit[1]
    m = prepare_model(model, device)
    if device.type == "cuda":
        m = m.to(memory_format=torch.channels_last)
    _PREPARED[model] = (key, m)
    return m


def for_evaluation(model: nn.Module) -> nn.Module:
    """The model for forward passes without gradients (RS, the deletion and insertion curves): on
    CUDA its `prepared` copy (batch norm folded, channels_last), on the CPU the model itself in
    eval mode. The prepared copy computes the same logits but for rounding; on the CPU it would
    be faster too (benchmarks/README.md), but every committed run was made with the CPU's
    rounding of the model as trained, and recomputes byte-identical only with it."""
    model.eval()
    device = next(model.parameters()).device
    if device.type != "cuda":
        return model
    try:
        return prepared(model, device)
    except Exception:  # a model that cannot be copied or traced: RS and the curves run it as it is
        return model


def clear_prepared() -> None:
    """Forget every prepared copy (the next call prepares each model again)."""
    _PREPARED.clear()


def inputs_that_fit(model: nn.Module, x: torch.Tensor, classes, share: float = 0.5) -> int | None:
    """On CUDA, how many inputs shaped like x[0] one forward pass with a backward pass per
    class can take within `share` of the free memory (measured in fp32 on two inputs, the
    heavier precision); None elsewhere."""
    if x.device.type != "cuda":
        return None
    probe = x[:1].expand(2, *x.shape[1:])
    _grads(model, probe, classes, nullcontext())  # first: cuDNN's autotuning, whose workspace is no input's
    torch.cuda.synchronize(x.device)
    before = torch.cuda.memory_allocated(x.device)
    torch.cuda.reset_peak_memory_stats(x.device)
    _grads(model, probe, classes, nullcontext())
    per_input = max(1, (torch.cuda.max_memory_allocated(x.device) - before) / 2)
    free, _ = torch.cuda.mem_get_info(x.device)
    free += torch.cuda.memory_reserved(x.device) - torch.cuda.memory_allocated(x.device)  # cached by torch
    return max(1, int(share * free / per_input))


def _set_rule(model: nn.Module, rule: str) -> None:
    for mod in model.modules():
        if isinstance(mod, SwitchableReLU):
            mod.rule = rule


def _grads(model, x, classes, autocast):
    """Input gradients of each class logit, from one forward pass."""
    x = x.detach().requires_grad_(True)
    with autocast:
        out = model(x).float()
    grads = []
    for i, c in enumerate(classes):
        (g,) = torch.autograd.grad(out[:, c].sum(), x, retain_graph=i < len(classes) - 1)
        # a copy: under CUDA graphs (torch.compile's reduce-overhead) the next class's backward
        # replays into the buffer this gradient is
        grads.append(g.float() if g.dtype != torch.float32 else g.clone())
    return grads


def _ig(model, x, classes, steps, ig_method, internal_batch, autocast):
    """Integrated gradients (zero baseline) of a chunk x for every class, captum's rule."""
    from captum.attr._utils.approximation_methods import approximation_parameters

    step_sizes_of, alphas_of = approximation_parameters(ig_method)
    step_sizes, alphas = step_sizes_of(steps), alphas_of(steps)
    total = [torch.zeros_like(x, dtype=torch.float32) for _ in classes]
    per = max(1, internal_batch // len(x))  # interpolation steps per forward pass
    for s in range(0, steps, per):
        a = torch.tensor(alphas[s : s + per], device=x.device, dtype=x.dtype)
        w = torch.tensor(step_sizes[s : s + per], device=x.device, dtype=torch.float32)
        scaled = (a[:, None, None, None, None] * x[None]).flatten(0, 1)
        for acc, g in zip(total, _grads(model, scaled, classes, autocast)):
            acc += (g.view(len(a), *x.shape) * w[:, None, None, None, None]).sum(0)
    return [x.float() * acc for acc in total]


def _maps_one_model(
    model, x, methods, classes, ig_steps, ig_method, internal_batch, bf16=frozenset(), reduce=reduce_channels
):
    """{method: (classes, N, H, W)} for one prepared model and one chunk of images; the methods
    in `bf16` run under bf16 autocast (Saliency and Gradient x Input share one pass, so they
    share one precision). `reduce` turns (N, C, H, W) attributions into maps (SmoothGrad keeps
    the channels: it averages attributions before reducing them)."""

    def autocast(method):
        return _autocast(x.device, method in bf16)

    out = {}
    grad_methods = [m for m in methods if m in GRADIENT_METHODS]
    if grad_methods:
        _set_rule(model, "plain")
        grads = _grads(model, x, classes, autocast(grad_methods[0]))
        if "saliency" in methods:
            out["saliency"] = torch.stack([reduce(g.abs()) for g in grads])
        if "input_x_gradient" in methods:
            out["input_x_gradient"] = torch.stack([reduce(x * g) for g in grads])
    for method, rule in (("guided_backprop", "guided"), ("deconvolution", "deconv")):
        if method in methods:
            _set_rule(model, rule)
            out[method] = torch.stack([reduce(g) for g in _grads(model, x, classes, autocast(method))])
    _set_rule(model, "plain")
    if "integrated_gradients" in methods:
        ig = _ig(model, x, classes, ig_steps, ig_method, internal_batch, autocast("integrated_gradients"))
        out["integrated_gradients"] = torch.stack([reduce(a) for a in ig])
    return out


def map_agreement(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-map Spearman rank correlation (`sanity.spearman`: tied pixels, such as a map's zeros,
    share their average rank, so two maps' zeros do not agree by position) and top-half Jaccard
    (`metrics.agreement`) between two stacks of maps."""
    from .metrics import agreement
    from .sanity import spearman

    rho = torch.from_numpy(spearman(a.detach().double(), b.detach().double()))
    same = (a == b).flatten(-2).all(-1).cpu()  # equal maps agree, constant ones too (Spearman gives them 0)
    rho = torch.where(same, torch.ones_like(rho), rho)
    return rho, agreement(important(a, "top_q", 0.5), important(b, "top_q", 0.5))


def _autocast(device: torch.device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()


def attribution_maps(
    models: list[nn.Module],
    x: torch.Tensor,
    methods: list[str],
    classes=(0, 1),
    ig_steps: int = 50,
    ig_method: str = "gausslegendre",
    batch_size: int = 64,
    internal_batch: int = 256,
    device: torch.device | str | None = None,
    precision: str | dict[str, str] = "fp32",
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """Channel-reduced maps {method: (models, classes, N, H, W)} on CPU, float32.

    `x` holds normalised images (N, 3, H, W). precision: "fp32", "bf16", or {method: "fp32" |
    "bf16"}, the same for every model (`gadlib.precision.plan` makes that choice)."""
    bf16 = _precision_plan(methods, precision)
    device = torch.device(device) if device else next(models[0].parameters()).device
    results = {m: torch.zeros(len(models), len(classes), len(x), *x.shape[-2:]) for m in methods}
    if len(x) == 0:
        return results
    bar = tqdm(total=len(models) * len(x), desc="attributions", unit="img", leave=False, disable=not progress)
    family = [prepared(model, device) for model in models]
    if device.type == "cuda" and x.element_size() * x.numel() < 0.1 * torch.cuda.mem_get_info(device)[0]:
        x = x.to(device)  # once, not once per model and chunk (before the memory probe, which counts it)
    with cudnn_autotuned(device):
        fit = inputs_that_fit(family[0], x[:1].to(device), classes)  # measured with the whole family in memory
        if fit is not None:
            batch_size, internal_batch = min(batch_size, fit), min(internal_batch, fit)
        for k, ready in enumerate(family):
            for i in range(0, len(x), batch_size):
                chunk = x[i : i + batch_size].to(device)
                out = _maps_one_model(ready, chunk, methods, classes, ig_steps, ig_method, internal_batch, bf16)
                for m in methods:
                    results[m][k, :, i : i + len(chunk)] = out[m].cpu()
                bar.update(len(chunk))
    bar.close()
    return results


@contextmanager
def cudnn_autotuned(device: torch.device):
    """cuDNN's autotuning (`torch.backends.cudnn.benchmark`) on CUDA for the work inside only:
    faster convolutions for the engine's repeated shapes, while the caller's setting, and with it
    the last bits of the caller's own convolutions, is given back after (also on a raise)."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = before or device.type == "cuda"
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def _precision_plan(methods: list[str], precision: str | dict[str, str]) -> frozenset:
    """The methods to run under bf16 autocast, from "fp32", "bf16" or {method: precision}."""
    for m in methods:
        check_method(m)
    plan = precision if isinstance(precision, dict) else {m: precision for m in methods}
    if (GRADIENT_METHODS & set(methods)) and len({plan[m] for m in GRADIENT_METHODS & set(methods)}) > 1:
        raise ValueError("saliency and input_x_gradient share one pass: give them the same precision")
    return frozenset(m for m in methods if plan[m] == "bf16")


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
    internal_batch: int = 256,
    seed: int = 0,
    precision: str | dict[str, str] = "fp32",
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """SmoothGrad over each base method, as captum's NoiseTunnel computes it (nt_type
    "smoothgrad"): the mean attribution over `samples` noisy copies of each image (sd = noise x
    the input range of x), then reduced over channels. {method: (classes, N, H, W)} on CPU.

    On the engine: each forward pass over the noisy copies serves both classes (and Saliency and
    Gradient x Input share one), where NoiseTunnel makes its passes per method and class. The noise is
    NoiseTunnel's as gadlib called it before (the global generator seeded with `seed`, then one
    draw per chunk of `batch_size` images, the same for every method and class; the caller's
    random state is given back after, `gadlib.seeding`), so the maps are
    NoiseTunnel's up to the engine's rounding (tests/test_controls.py compares the two). On CUDA
    a chunk is capped by what free memory holds, and the noise drawn follows the chunks.
    `precision` as in `attribution_maps`."""
    bf16 = _precision_plan(methods, precision)
    out = {m: torch.zeros(len(classes), len(x), *x.shape[-2:]) for m in methods}
    if len(x) == 0:
        return out
    device = next(model.parameters()).device
    ready = prepared(model, device)
    sd = noise * float(x.max() - x.min())
    # samples x images inputs at once, and IG's steps of them too: on CUDA capped by what free
    # memory holds (at 224 px, 64 images x 5 samples x 50 steps would need hundreds of GB)
    bar = tqdm(total=len(x), desc="smoothgrad", unit="img", leave=False, disable=not progress)
    # the noise is the seed's; the caller's random state and cuDNN setting are kept; memory is
    # measured under the autotuning, whose convolutions may take more workspace
    with seeded(seed, device), cudnn_autotuned(device):
        fit = inputs_that_fit(ready, x[:1].to(device), classes)
        if fit is not None:
            batch_size, internal_batch = max(1, min(batch_size, fit // samples)), min(internal_batch, fit)
        for i in range(0, len(x), batch_size):
            chunk = x[i : i + batch_size].to(device)
            n = len(chunk)
            # NoiseTunnel's draw (captum's _add_noise_to_input): image j's copies are rows j*samples...
            spread = torch.tensor(sd, device=device).repeat((n * samples, *chunk.shape[1:]))
            noisy = chunk.repeat_interleave(samples, dim=0) + torch.normal(0, spread)
            maps = _maps_one_model(
                ready, noisy, methods, classes, ig_steps, ig_method, internal_batch, bf16, reduce=lambda a: a
            )
            for m in methods:  # NoiseTunnel's mean: the sum over an image's copies, / samples
                mean = maps[m].view(len(classes), n, samples, *chunk.shape[1:]).sum(2) / samples
                out[m][:, i : i + n] = reduce_channels(mean).cpu()
            bar.update(n)
    bar.close()
    return out
