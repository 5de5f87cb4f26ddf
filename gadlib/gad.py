"""GAD on your own model, shaped like a captum attribution.

    gad = GAD(model, IntegratedGradients, alphas=[2, 4, 6, 8])
    gad.fit(images, labels, epochs=10)         # METHOD.md steps 1-2: one support per alpha
    maps = gad.attribute(inputs, target=3)     # step 3: the original's map where all models agree

`method` is any captum gradient attribution (a class, an instance, or NoiseTunnel around one),
or one of the five names of `gadlib.METHODS`. Saliency, Deconvolution, InputXGradient,
GuidedBackprop and IntegratedGradients (zero baseline) go through the project's fast engine,
which gives captum's maps; anything else (GradientShap, NoiseTunnel, other arguments) calls
captum itself. Maps are reduced over channels (sum of absolute values), (N, H, W), on the CPU.

Any number of classes: an image of class c has every other logit lowered by alpha (one number,
or one per class), or with `pair=(c1, c2)` only the pair's logits move, as METHOD.md states it;
with two classes both are the paper's rule. The pipeline's notebooks train
their supports through `GAD.fit` and use the same consensus code (`consensus.regions`).
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from . import consensus as cons
from . import inputs as checks
from . import metrics, notices, runfiles
from .attributions import attribution_maps, captum_class
from .config import FRAC_MAX_TAU, METHODS, PAPER_ALPHAS, SUPPORT_LR, TOP_Q
from .errors import GADInputError
from .hulls import region_hulls
from .models import SCRIPTED, predict_logits
from .seeding import seeded
from .tables import HULL_OVERLAP
from .training import (
    alpha_text,
    check_pair,
    distanced_targets,
    family_report,
    per_class_alphas,
    train_support,
    uses_bf16,
    warn_if_order_lost,
)

SAVE_FORMAT = "gad-supports/1"
NO_SUPPORTS = "this GAD has no supports: call fit(images, labels) or give supports=[...]"
# captum arguments the engine implements, per method (IG's zero baseline is captum's default)
_ENGINE_ARGS = {"integrated_gradients": {"n_steps", "method", "internal_batch_size"}}


@dataclass
class Explanation:
    """Everything GAD computes for a batch, from one pass over the models."""

    maps: torch.Tensor  # (models, N, H, W): the original's map first, then each support's
    consensus: torch.Tensor  # (N, H, W) bool: pixels every model ranks important
    gad: torch.Tensor  # (N, H, W): the original's map on the consensus, 0 elsewhere
    baseline: torch.Tensor  # (N, H, W): the original's own top |consensus| pixels (matched area)

    @property
    def original(self) -> torch.Tensor:
        return self.maps[0]


def _keeping_modes(method):
    """GAD runs the user's model in eval mode; it hands it back with each module's train/eval mode
    as it was (a model in train mode stays in train mode)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        modes = [(m, m.training) for m in self.model.modules()]
        try:
            return method(self, *args, **kwargs)
        finally:
            for m, training in modes:
                m.training = training

    return wrapper


def _warn_if_labels_disagree(logits: torch.Tensor, labels: torch.Tensor) -> None:
    """A model that gets far fewer training labels right than chance would is given labels in
    another class order than its own (folder_images numbers the class folders in sorted order):
    its supports would push each image toward the wrong class. A weak model is near chance, not
    below half of it."""
    right = logits.argmax(1) == labels
    # balanced: a model that always predicts the rarer class is not taken for one with swapped labels
    accuracy = float(torch.stack([right[labels == c].float().mean() for c in torch.unique(labels)]).mean())
    chance = 1 / logits.shape[1]
    if accuracy < chance / 2:
        notices.warn(
            f"the model predicts {accuracy:.0%} of the training labels, per class (chance: {chance:.0%}): the "
            "labels are likely not in its class order: number them as its outputs are (folder_images: "
            "classes={folder: the model's index}; the runner: classes in the order of its outputs)"
        )


def _check_method_kwargs(spec: dict, kwargs: dict) -> None:
    """The keywords given for the attribution method must be its `attribute`'s own (n_steps is
    Integrated Gradients', say): a one-line error instead of captum's TypeError."""
    from captum.attr import NoiseTunnel

    # GAD gives the inputs and the target itself, and needs the maps alone
    reserved = {"self", "inputs", "target", "return_convergence_delta"}
    if "wrap" in spec:  # NoiseTunnel: the reserved ones refused, its own kept, the rest the inner method's
        _check_method_kwargs({"cls": NoiseTunnel}, kwargs)
        tunnel = inspect.signature(NoiseTunnel.attribute).parameters
        return _check_method_kwargs(spec["wrap"], {k: v for k, v in kwargs.items() if k not in tunnel})
    cls = spec["cls"]
    params = inspect.signature(cls.attribute).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())  # passes the rest on, as NoiseTunnel
    if bad := [k for k in kwargs if k in reserved or not (k in params or takes_any)]:
        own = [k for k in params if k not in reserved and params[k].kind != params[k].VAR_KEYWORD]
        raise GADInputError(
            f"{cls.__name__} does not take {bad[0]!r} from GAD (it takes {', '.join(own) or 'nothing more'}): "
            "drop it, or give a method that takes it"
        )
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    needed = [k for k, p in params.items() if k not in reserved and p.kind in named and p.default is p.empty]
    if missing := [k for k in needed if k not in kwargs]:  # GradientShap's baselines, Occlusion's windows
        raise GADInputError(
            f"{cls.__name__} needs {', '.join(map(repr, missing))}, which GAD cannot choose: give "
            f"{'it' if len(missing) == 1 else 'them'} with the call, e.g. gad.explain(inputs, target, {missing[0]}=...)"
        )
    for k in COUNTS & set(kwargs):  # captum's own error for these is numpy's or an assert's
        if kwargs[k] is not None:
            checks.check_count(k, kwargs[k])


# captum's count arguments (Integrated Gradients' steps, NoiseTunnel's and GradientShap's samples)
COUNTS = {"n_steps", "nt_samples", "n_samples", "internal_batch_size", "nt_samples_batch_size"}


class GAD:
    """Gradient Artificial Distancing around `model` and one attribution `method`.

    alphas: one entry per support, each one number or one number per class. supports: models you
    already trained (then no `fit`). rule, q, tau: the importance threshold of the consensus
    (top-q share of pixels, or tau x the map's maximum), METHOD.md's defaults. pair: the classes
    of interest (c1, c2) of an m-class model, distanced as METHOD.md step 1 states (only logit c2
    of class-c1 images and logit c1 of class-c2 images move; alphas one number or two); None
    lowers every other logit of every image."""

    def __init__(
        self,
        model: nn.Module,
        method,
        alphas: Sequence = PAPER_ALPHAS,
        supports: Sequence[nn.Module] | None = None,
        rule: str = "top_q",
        q: float = TOP_Q,
        tau: float = FRAC_MAX_TAU,
        pair: tuple[int, int] | None = None,
    ):
        if not isinstance(model, nn.Module):
            raise GADInputError(f"model is a {type(model).__name__}: GAD explains a torch.nn.Module classifier")
        if isinstance(model, torch.jit.ScriptModule):
            raise GADInputError(f"the model {SCRIPTED}")
        if next(model.parameters(), None) is None:
            raise GADInputError("the model has no parameters: GAD trains copies of a classifier with weights")
        q, tau = checks.check_threshold(rule, q, tau)
        self.model = model
        self.method = method
        self._spec = method_spec(method)  # checks the method now, not at the first attribute()
        rule_of_relu = self._spec.get("cls") in (captum_class("guided_backprop"), captum_class("deconvolution"))
        if rule_of_relu and not any(isinstance(m, nn.ReLU) for m in model.modules()):
            notices.warn(
                f"{self._spec['cls'].__name__} changes the backward pass of nn.ReLU modules, and this model has "
                "none (a functional relu?): its maps will be Saliency's"
            )
        self.alphas = checks.check_alphas(alphas)
        self.supports = list(supports) if supports is not None else []
        if supports is not None and len(self.supports) != len(self.alphas):
            raise GADInputError(
                f"{len(self.supports)} supports for {len(self.alphas)} alphas: give one support per alpha"
            )
        for i, support in enumerate(self.supports):
            checks.check_support(model, support, i)
        self.rule, self.q, self.tau = rule, q, tau
        if pair is not None and (isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2):
            raise GADInputError(f"pair {checks.short_repr(pair)}: give two classes (c1, c2), or None")
        self.pair = None if pair is None else tuple(pair)  # checked against the model's classes in fit
        # each trained support's loss per epoch (None for supports given or read back)
        self.history: list[list[float] | None] = [None] * len(self.alphas)
        # the weights the supports belong to: taken when they are given or trained, so that
        # `save` refuses a model changed since, and explain / evaluate too
        self._fitted_on(runfiles.fingerprint(model) if self.supports else None)

    @property
    def models(self) -> list[nn.Module]:
        """The original first, then the supports."""
        return [self.model, *self.supports]

    # ------------------------------------------------------------ steps 1-2
    @_keeping_modes
    def fit(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        epochs: int = 10,
        lr: float = SUPPORT_LR,
        batch_size: int = 32,
        seed: int = 0,
        mode: str = "train",
        keep: Callable[[int, Callable[[], tuple[nn.Module, list[float]]]], dict] | None = None,
        desc: str = "support",
        precision: str = "auto",
        model_fingerprint: str | None = None,
    ) -> GAD:
        """Train one support per alpha: a copy of the model regressed (Adam, MSE, no softmax) onto
        the model's own logits with every other class's logit lowered by alpha (only the pair's
        logits, given a pair); support i is seeded with seed + i + 1. images: uint8 (normalised
        with ImageNet statistics, as the pipeline does) or float (the model's input as it is),
        (N, C, H, W); labels: (N,) classes.

        keep(i, train) -> state_dict decides how support i is kept (train() gives the support and
        its loss per epoch): the default trains it; the pipeline passes its run-file cache, so a
        support trained once is read back. `history` holds each trained support's losses.
        precision: "auto" trains under bf16 autocast on CUDA and in fp32 on the CPU; "fp32" or
        "bf16" choose (bf16 on the CPU pays only where it has native bf16).
        model_fingerprint: the model's `runfiles.fingerprint` where the caller holds it already
        (the pipeline's run record), so that its weights are not hashed again (VGG16's 134
        million at 224 px, in every notebook); a wrong one can only make `save` refuse, and
        `explain` / `evaluate` once the weights have moved (another device) or changed."""
        if model_fingerprint is not None and not re.fullmatch(r"[0-9a-f]{64}", str(model_fingerprint)):
            raise GADInputError(
                f"model_fingerprint {checks.short_repr(model_fingerprint)}: give runfiles.fingerprint(model), "
                "64 hexadecimal digits, or None to have it computed"
            )
        images, labels = checks.labelled_images(images, labels, self.model)
        epochs, batch_size = checks.fit_settings(epochs, batch_size, lr, mode)
        device = next(self.model.parameters()).device
        uses_bf16(device, precision)  # an unknown precision is named before any work
        first = checks.model_outputs(self.model, images, "images", 8)  # the model's classes, before any work
        checks.check_classes(first, labels, "labels")
        if self.pair is None and len(found := torch.unique(labels)) < 2:
            raise GADInputError(
                f"labels hold class {int(found[0])} only: GAD pushes the classes apart, so its supports must "
                "see images of two or more; give images of every class (a folder per class)"
            )
        if ((first >= 0) & (first <= 1)).all() and torch.allclose(first.sum(1), torch.ones(len(first)), atol=1e-4):
            notices.warn(
                "the model's outputs look like probabilities (each row in [0, 1], summing to 1): GAD "
                "regresses pre-softmax logits, which probabilities cannot be pushed apart like; give "
                "the model without its final softmax"
            )
        for alpha in self.alphas:  # each alpha's shape against the classes (and the pair), before any work
            distanced_targets(first, labels[: len(first)], alpha, self.pair)
        if self.pair is not None and (lacking := [c for c in self.pair if not (labels == int(c)).any()]):
            raise GADInputError(
                f"no training image of class {lacking[0]} of the pair {self.pair}: its supports would be "
                "the original; give images of both classes"
            )
        logits = []  # the model's training logits, predicted only if a support must be trained

        def trainer(i, alpha):
            def train():
                if not logits:
                    logits.append(predict_logits(self.model, images))
                    _warn_if_labels_disagree(logits[0], labels)
                targets = distanced_targets(logits[0], labels, alpha, self.pair)
                with seeded(seed + i + 1, device):
                    return train_support(
                        self.model,
                        images,
                        targets,
                        epochs,
                        lr,
                        batch_size,
                        seed + i + 1,
                        desc=f"{desc} alpha={alpha_text(alpha)}",
                        mode=mode,
                        precision=precision,
                    )

            return train

        supports, history = [], [None] * len(self.alphas)  # this GAD's only once every support is made
        # each support is trained under seed + i + 1 (seeded: the caller's random state is kept)
        for i, alpha in enumerate(tqdm(self.alphas, desc=f"{desc}s", leave=False)):
            train = trainer(i, alpha)

            def trained(i=i, train=train):
                support, history[i] = train()
                return support, history[i]

            if keep is None:
                support = trained()[0]
            else:
                support = copy.deepcopy(self.model)
                support.load_state_dict(keep(i, trained))
            supports.append(support.to(device).eval())
        self.supports, self.history = supports, history
        self._fitted_on(model_fingerprint or runfiles.fingerprint(self.model))
        return self

    def _weights_key(self) -> tuple:
        """A cheap key of the model's weights: each parameter's storage and in-place version counter
        (bumped by optimiser steps but fused ones, load_state_dict and in-place ops; not by writes
        through .data), as `attributions.prepared`. Parameters only: a buffer that an eval-mode
        forward updates (a counter, an observer) is no other model."""
        return tuple((t.data_ptr(), t._version) for t in self.model.parameters())

    def _fitted_on(self, fingerprint: str | None) -> None:
        self.model_fingerprint, self._weights_seen = fingerprint, self._weights_key()

    def _check_weights(self) -> None:
        """Supports fitted on other weights than the model's now (it was trained on, or loaded
        other weights since) would explain a model that is not there: a one-line error."""
        if self._weights_key() == self._weights_seen:
            return
        if runfiles.fingerprint(self.model) != self.model_fingerprint:
            raise GADInputError(
                "the model's weights changed (their values or dtype) since its supports were fitted: fit again "
                "(GAD.fit), or give the model as it was"
            )
        # the same weights, moved (to another device): the supports go along
        device = next(self.model.parameters()).device
        self.supports = [s.to(device) for s in self.supports]
        self._weights_seen = self._weights_key()

    @_keeping_modes
    def report(self, images: torch.Tensor, labels) -> pd.DataFrame:
        """METHOD.md step 2's check, on held-out `images` (as `fit` takes them) and their labels:
        the original's accuracy (its alphas 0), then per support its alphas, MSE to its distanced
        targets, accuracy and each logit's Spearman with the original's, as the pipeline's
        models.csv has them. Warns when a support no longer keeps the order of the original's
        logits (Spearman below `training.ORDER_KEPT`), the paper's premise."""
        if not self.supports:
            raise GADInputError(NO_SUPPORTS)
        images, labels = checks.labelled_images(images, labels, self.model)
        checks.check_classes(checks.model_outputs(self.model, images, "images", 8), labels, "labels")
        report = family_report(self.model, self.supports, self.alphas, images, labels, self.pair)
        warn_if_order_lost(report)
        return report

    # ------------------------------------------------------------ step 3
    @_keeping_modes
    def explain(self, inputs: torch.Tensor, target, **method_kwargs) -> Explanation:
        """Every model's map, the consensus, the GAD map and the matched-area baseline for
        `inputs` (N, C, H, W), explaining class `target` (one int, or one per image)."""
        return self._explain(*self._checked(inputs, target), **method_kwargs)

    def _explain(self, x: torch.Tensor, target: torch.Tensor, **method_kwargs) -> Explanation:
        maps = self._maps(x, target, **method_kwargs)
        c, views = cons.regions(maps, self.rule, self.q, self.tau)
        return Explanation(maps, c, views["gad"], views["base"])

    def attribute(self, inputs: torch.Tensor, target, **method_kwargs) -> torch.Tensor:
        """The GAD map (N, H, W): the original model's map where every model agrees, 0 elsewhere."""
        return self.explain(inputs, target, **method_kwargs).gad

    def consensus(self, inputs: torch.Tensor, target, **method_kwargs) -> torch.Tensor:
        """(N, H, W) bool: the pixels that the original and every support rank important."""
        return self.explain(inputs, target, **method_kwargs).consensus

    @_keeping_modes
    def maps(self, inputs: torch.Tensor, target, fast: bool = True, **method_kwargs) -> torch.Tensor:
        """(models, N, H, W): each model's channel-reduced map for `target`, the original first.
        fast=False calls captum even where the engine could."""
        return self._maps(*self._checked(inputs, target), fast, **method_kwargs)

    def _checked(self, inputs, target) -> tuple[torch.Tensor, torch.Tensor]:
        """The inputs as the model takes them and one target class per image, or a one-line error."""
        if not self.supports:
            raise GADInputError(NO_SUPPORTS)
        self._check_weights()
        x = checks.model_inputs(checks.check_images(inputs, "inputs"), self.model)
        target = checks.target_classes(target, len(x))
        logits = checks.model_outputs(self.model, x, "inputs", 1)
        checks.check_classes(logits, target)
        if self.pair is not None:  # supports given or read back: fit has not checked it
            check_pair(self.pair, logits.shape[1])
        return x, target

    def _maps(self, x: torch.Tensor, target: torch.Tensor, fast: bool = True, **method_kwargs) -> torch.Tensor:
        _check_method_kwargs(self._spec, method_kwargs)
        device = next(self.model.parameters()).device
        name = self._spec.get("engine")
        if fast and name and set(method_kwargs) <= _ENGINE_ARGS.get(name, set()):
            return self._engine_maps(name, x, target, device, method_kwargs)
        return self._captum_maps(x, target, device, method_kwargs)

    def _engine_maps(self, name, x, target, device, kwargs) -> torch.Tensor:
        ig = {}
        if name == "integrated_gradients":
            ig = {"ig_steps": kwargs.get("n_steps", 50), "ig_method": kwargs.get("method", "gausslegendre")}
            if kwargs.get("internal_batch_size"):
                ig["internal_batch"] = kwargs["internal_batch_size"]
        out = torch.zeros(len(self.models), *x.shape[:1], *x.shape[-2:])
        for c in torch.unique(target).tolist():  # each image for its own target only
            idx = torch.nonzero(target == c).flatten()
            maps = attribution_maps(self.models, x[idx], [name], classes=(c,), device=device, progress=False, **ig)
            out[:, idx] = maps[name][:, 0]
        return out

    def _captum_maps(self, x, target, device, kwargs) -> torch.Tensor:
        kwargs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}  # baselines
        x = x.detach().to(device)
        # a method that draws (NoiseTunnel, GradientShap) draws the same for every model: else the
        # consensus would measure the draws, not the models; the draw is the caller's random state's
        draw = int(torch.randint(2**62, ()))
        out = []
        for model in self.models:
            explainer = bound_method(self._spec, model.eval())
            with seeded(draw, device):
                a = explainer.attribute(x.clone().requires_grad_(True), target=target.to(device), **kwargs)
            out.append(cons.reduce_channels(a.detach()).float().cpu())
        return torch.stack(out)

    # ------------------------------------------------------------ evaluation
    @_keeping_modes
    def evaluate(
        self,
        inputs: torch.Tensor,
        target,
        hull_rule: str = "top_q",
        hull_q: float = TOP_Q,
        hull_tau: float = FRAC_MAX_TAU,
        fill: str = "zero",
        **method_kwargs,
    ) -> pd.DataFrame:
        """The paper's measures per image for class `target` (any class of the model): RC of the
        GAD hull and of the two baselines' hulls against the original's, and RS of the GAD hull,
        the supplementary region and the baselines' hulls (occluded with `fill`): `base` keeps as
        many pixels as GAD, `base_hull` as much hull (`hulls.hull_matched_map`). With the
        original's and GAD's hull areas in pixels, as the pipeline's rows have them, so that
        `tables.baseline_check(*tables.rows_of_evaluation(...))` can also compare the logit change."""
        hull_q, hull_tau = checks.check_threshold(hull_rule, hull_q, hull_tau, "hull")
        x, target = self._checked(inputs, target)  # RS runs the model on these inputs too
        metrics.occlusion_fill(fill, x.shape[1])  # an unknown fill is named before the maps are made
        ex = self._explain(x, target, **method_kwargs)
        views = {"orig": ex.original, "gad": ex.gad, "base": ex.baseline}
        device = next(self.model.parameters()).device  # the maps come back on the CPU; fill where the model runs
        h = {k: v for (_, k), v in region_hulls(views, [hull_rule], hull_q, hull_tau, device).items()}
        regions = cons.occlusion_regions(h)
        rs = metrics.rs(self.model, x, torch.stack(list(regions.values())), target, fill)
        return pd.DataFrame(
            {
                "image": range(len(x)),
                "target": target.numpy(),
                "rc": metrics.rc(h["gad"], h["orig"]).numpy(),
                "rc_base": metrics.rc(h["base"], h["orig"]).numpy(),
                "rc_base_hull": metrics.rc(h["base_hull"], h["orig"]).numpy(),
                "area_orig": metrics.area(h["orig"]).numpy(),
                "area_gad": metrics.area(h["gad"]).numpy(),
                HULL_OVERLAP: metrics.iou(h["gad"], h["base_hull"]).numpy(),
                "consensus_share": (metrics.area(ex.consensus) / ex.consensus[0].numel()).numpy(),
                **{f"rs_{k}": v.numpy() for k, v in zip(regions, rs)},
            }
        )

    # ------------------------------------------------------------ save and load
    def save(self, path: str | Path) -> None:
        """The supports and settings, with the model's fingerprint (written atomically)."""
        if not self.supports:
            raise GADInputError("nothing to save: call fit(images, labels) first")
        path = Path(path).expanduser()
        if path.is_dir():
            raise GADInputError(f"{path} is a folder: give the path of the file to write, e.g. {path / 'gad.pt'}")
        if runfiles.fingerprint(self.model) != self.model_fingerprint:
            raise GADInputError("the model's weights changed since its supports were fitted: fit again, then save")
        state = {
            "format": SAVE_FORMAT,
            "model_fingerprint": self.model_fingerprint,
            "method": self._spec["saved"],
            "alphas": self.alphas,
            "rule": self.rule,
            "q": self.q,
            "tau": self.tau,
            "pair": None if self.pair is None else list(self.pair),
            "supports": [{k: v.cpu() for k, v in s.state_dict().items()} for s in self.supports],
        }
        runfiles.atomic_write(path, lambda f: torch.save(state, f))

    @classmethod
    def load(cls, path: str | Path, model: nn.Module, method=None) -> GAD:
        """A saved GAD for `model`, which must be the model it was fitted on (same weights);
        `method` replaces the saved one (give it when the saved one was an instance with
        constructor arguments other than multiply_by_inputs)."""
        path = Path(path).expanduser()
        if path.is_dir():
            raise GADInputError(f"{path} is a folder: give the file GAD.save wrote in it, e.g. {path / 'gad.pt'}")
        if not path.is_file():
            raise GADInputError(f"{path} does not exist: give the file GAD.save wrote")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)  # runs no pickled code
        except Exception as err:
            raise GADInputError(
                f"{path} is not a file GAD.save wrote ({type(err).__name__}): give the path you saved to, "
                "or fit the supports again (GAD.fit) and save them"
            ) from None
        if not isinstance(state, dict) or state.get("format") != SAVE_FORMAT:
            raise GADInputError(
                f"{path} is not a file GAD.save wrote (no {SAVE_FORMAT} header): give the path you saved to, "
                "or fit the supports again (GAD.fit) and save them"
            )
        found = runfiles.fingerprint(model)
        if found != state["model_fingerprint"]:
            saved = {t.dtype for sd in state["supports"][:1] for t in sd.values() if t.is_floating_point()}
            ours = {t.dtype for t in model.state_dict().values() if t.is_floating_point()}
            other = f" (or this model in {', '.join(map(str, saved))}: it is in {', '.join(map(str, ours))})"
            raise GADInputError(
                f"{path} holds supports of another model (weights {state['model_fingerprint'][:12]}, "
                f"this model's {found[:12]}): load it with the model it was fitted on"
                f"{other if saved and saved != ours else ''}"
            )
        device = next(model.parameters()).device
        supports = []
        for sd in state["supports"]:
            s = copy.deepcopy(model)
            s.load_state_dict(sd)
            supports.append(s.to(device).eval())
        if method is None:
            try:
                method = rebuild_method(state["method"])
            except GADInputError as err:
                raise GADInputError(f"{path}: {err}") from None
        return cls(model, method, state["alphas"], supports, state["rule"], state["q"], state["tau"], state.get("pair"))


# ---------------------------------------------------------------- methods
def method_spec(method) -> dict:
    """What `method` is: {"cls" and "kwargs" (or "wrap", the spec inside a NoiseTunnel), "engine":
    the engine's name for it or None, "saved": a description `rebuild_method` reads back}.
    Raises a one-line error for anything else."""
    from captum.attr import Attribution, NoiseTunnel
    from captum.attr._utils.attribution import LayerAttribution, NeuronAttribution

    if isinstance(method, str):
        return method_spec(captum_class(method))
    if isinstance(method, NoiseTunnel):
        inner = method_spec(method.attribution_method)
        return {"wrap": inner, "engine": None, "saved": {"noise_tunnel": inner["saved"]}}
    cls = method if isinstance(method, type) else type(method)
    takes = inspect.signature(cls.__init__).parameters if isinstance(cls, type) else {}
    if (
        not issubclass(cls, Attribution)
        or issubclass(cls, (LayerAttribution, NeuronAttribution, NoiseTunnel))
        or not ({"forward_func", "model"} & set(takes))
    ):
        raise GADInputError(
            f"unknown attribution method {method!r}: give a captum attribution class or instance "
            "(Saliency, IntegratedGradients, GradientShap, ...), NoiseTunnel around one, "
            f"or one of {', '.join(METHODS)}"
        )
    kwargs = {}
    if not isinstance(method, type) and "multiply_by_inputs" in takes:
        kwargs["multiply_by_inputs"] = method.multiplies_by_inputs
    engine = next((name for name in METHODS if captum_class(name) is cls), None)
    if kwargs.get("multiply_by_inputs") is False:
        engine = None  # the engine multiplies by the inputs, as captum does by default
    return {"cls": cls, "kwargs": kwargs, "engine": engine, "saved": {"class": _path_of(cls), "kwargs": kwargs}}


def bound_method(spec: dict, model: nn.Module):
    """The captum attribution of `spec` for `model`."""
    from captum.attr import NoiseTunnel

    if "wrap" in spec:
        return NoiseTunnel(bound_method(spec["wrap"], model))
    return spec["cls"](model, **spec["kwargs"])


def rebuild_method(saved: dict):
    """The method a saved GAD used, from its description."""
    from captum.attr import NoiseTunnel

    if "noise_tunnel" in saved:
        return NoiseTunnel(bound_method(method_spec(rebuild_method(saved["noise_tunnel"])), nn.Identity()))
    module, _, name = saved["class"].rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):  # defined in a notebook or script (__main__), say
        raise GADInputError(
            f"the saved GAD's method {saved['class']} cannot be imported here: "
            "give the method again, GAD.load(path, model, method=...)"
        ) from None
    return cls(nn.Identity(), **saved["kwargs"]) if saved["kwargs"] else cls


def _path_of(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


__all__ = ["GAD", "Explanation", "method_spec", "per_class_alphas"]
