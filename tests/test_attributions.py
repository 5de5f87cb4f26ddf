"""Attributions: closed forms on a linear model, agreement of the engine with plain captum,
and batched results equal to per-image results."""

import copy

import pytest
import torch

from gadlib import METHODS, GADInputError
from gadlib.attributions import attribution_maps, map_agreement
from gadlib.consensus import reduce_channels
from gadlib.models import build_model

from captum_reference import captum_attribution, captum_maps


def test_closed_forms_of_a_linear_model(linear_model):
    x = torch.randn(4, 3, 6, 6)
    w = linear_model[1].weight.view(2, 3, 6, 6)
    for c in (0, 1):
        closed = {
            "saliency": w[c].abs().expand_as(x),
            "input_x_gradient": w[c] * x,
            "integrated_gradients": w[c] * x,  # zero baseline: exact for a linear model
        }
        for method, expected in closed.items():
            got = captum_attribution(linear_model, method, x, c, ig_steps=8)
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
        maps = attribution_maps([linear_model], x, list(closed), ig_steps=8, precision="fp32", progress=False)
        for method, expected in closed.items():
            torch.testing.assert_close(maps[method][0, c], reduce_channels(expected), rtol=1e-4, atol=1e-6)


def test_a_relu_input_of_exactly_zero_passes_no_gradient_as_in_captum():
    """Units whose input to a ReLU is exactly 0 pass no gradient through nn.ReLU, so captum's
    plain-gradient maps see only the live units; the engine's ReLU must agree (a rule that
    passes the gradient at 0, such as where(x >= 0, x, 0), fails this through Saliency: the dead
    units read channel 0, where x is 0, so Gradient x Input and IG are 0 there either way)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    x = torch.rand(3, 3, 2, 2)
    x[:, 0] = 0  # channel 0 (flattened features 0-3) is 0 in every image
    with torch.no_grad():
        model[1].weight[:2, 4:] = 0  # units 0 and 1 read channel 0 only, with no bias:
        model[1].bias[:2] = 0  # their input is exactly 0, their weights are not
        model[1].weight[2:] = model[1].weight[2:].abs()
        model[1].bias[2:] = 1  # units 2 and 3: alive for these positive images
        model[3].weight.uniform_(0.5, 1)
    methods = ["saliency", "input_x_gradient", "integrated_gradients"]
    plain = captum_maps([model.eval()], x, methods, ig_steps=4)
    fast = attribution_maps([model], x, methods, ig_steps=4, precision="fp32", progress=False)
    w1, w2 = model[1].weight, model[3].weight  # the live units' closed form: grad = w2[c, 2:] @ w1[2:]
    for c in (0, 1):
        expected = (w2[c, 2:] @ w1[2:]).view(3, 2, 2).abs().sum(0)  # saliency reduced over channels
        torch.testing.assert_close(plain["saliency"][0, c], expected.expand(3, 2, 2))
    for method in methods:
        torch.testing.assert_close(fast[method], plain[method], rtol=1e-5, atol=1e-6)


def _with_random_batch_norm(model):
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.normal_(0, 0.2)
            mod.running_var.uniform_(0.5, 2)
            mod.weight.data.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize("arch", ["resnet18", "vgg16"])
def test_engine_agrees_with_plain_captum(arch):
    models = [_with_random_batch_norm(build_model(arch, 2, 32)) for _ in range(2)]
    x = torch.randn(3, 3, 32, 32)
    plain = captum_maps(models, x, list(METHODS), ig_steps=6)
    fast = attribution_maps(
        models, x, list(METHODS), ig_steps=6, batch_size=2, internal_batch=8, precision="fp32", progress=False
    )
    for method in METHODS:
        assert fast[method].shape == plain[method].shape == (2, 2, 3, 32, 32)
        torch.testing.assert_close(fast[method], plain[method], rtol=1e-3, atol=1e-6 * float(plain[method].abs().max()))
        rho, jac = map_agreement(fast[method], plain[method])
        assert rho.min() > 0.999 and jac.min() > 0.99, method


def test_batched_equals_per_image():
    model = _with_random_batch_norm(build_model("resnet18", 2, 32))
    x = torch.randn(4, 3, 32, 32)
    batched = attribution_maps([model], x, list(METHODS), ig_steps=4, batch_size=4, precision="fp32", progress=False)
    single = [
        attribution_maps(
            [model], x[i : i + 1], list(METHODS), ig_steps=4, batch_size=1, precision="fp32", progress=False
        )
        for i in range(4)
    ]
    for method in METHODS:
        per_image = torch.cat([s[method] for s in single], dim=2)
        torch.testing.assert_close(batched[method], per_image, rtol=1e-4, atol=1e-7)


def test_memory_cap_changes_batches_not_maps(monkeypatch):
    """Where free memory holds only 3 inputs (as measured on CUDA), the image chunk and IG's
    internal batch shrink to 3, and the maps stay the same."""
    from gadlib import attributions

    model = _with_random_batch_norm(build_model("resnet18", 2, 32))
    x = torch.randn(5, 3, 32, 32)
    free = attribution_maps([model], x, list(METHODS), ig_steps=4, batch_size=4, internal_batch=16, progress=False)
    seen = []
    real = attributions._maps_one_model

    def spy(model, chunk, methods, classes, ig_steps, ig_method, internal_batch, bf16):
        seen.append((len(chunk), internal_batch))
        return real(model, chunk, methods, classes, ig_steps, ig_method, internal_batch, bf16)

    monkeypatch.setattr(attributions, "inputs_that_fit", lambda *args, **kwargs: 3)
    monkeypatch.setattr(attributions, "_maps_one_model", spy)
    capped = attribution_maps([model], x, list(METHODS), ig_steps=4, batch_size=4, internal_batch=16, progress=False)
    assert seen == [(3, 3), (2, 3)]
    for method in METHODS:
        torch.testing.assert_close(capped[method], free[method], rtol=1e-4, atol=1e-7)


def test_preparing_a_model_folds_a_copy_and_leaves_the_users_model_as_it_was():
    from gadlib.attributions import prepare_model

    model = build_model("resnet18", 2, 32).eval()
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-1, 1)  # statistics that folding changes the weights by
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prepared = prepare_model(model, torch.device("cpu"))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in prepared.modules())  # folded
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 20  # the user's model keeps its own
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.requires_grad for p in model.parameters())  # frozen are the copy's weights only
    x = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(prepared(x), model(x), rtol=1e-4, atol=1e-5)


class _FoldCases(torch.nn.Module):
    """Batch norms FX's `fuse` folds (after a Linear, after a Conv1d) and one it must not (the
    convolution's output also feeds a skip connection)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)  # not folded: conv's output is used twice
        self.conv1d = torch.nn.Conv1d(4, 4, 3, padding=1)
        self.bn1d = torch.nn.BatchNorm1d(4)
        self.fc = torch.nn.Linear(4 * 36, 8)
        self.bn_fc = torch.nn.BatchNorm1d(8)
        self.relu = torch.nn.ReLU()
        self.out = torch.nn.Linear(8, 2)

    def forward(self, x):
        y = self.conv(x)
        y = self.relu(self.bn(y) + y)
        y = self.relu(self.bn1d(self.conv1d(y.flatten(2)))).flatten(1)
        return self.out(self.relu(self.bn_fc(self.fc(y))))


class _Untraceable(_FoldCases):
    def forward(self, x):
        if x.sum() > 0:  # control flow on a value: FX cannot trace it, so nothing is folded
            x = x * 1.0
        return super().forward(x)


class _Unusual(torch.nn.Module):
    """A batch norm shared by two convolutions, and one called on a convolution and on a sum:
    folding by module name would change the other call, so `fuse` folds them."""

    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(3, 4, 3, padding=1)
        self.shared = torch.nn.BatchNorm2d(4)
        self.c = torch.nn.Conv2d(4, 4, 1)
        self.twice = torch.nn.BatchNorm2d(4)
        self.out = torch.nn.Linear(4 * 36, 2)

    def forward(self, x):
        y = self.shared(self.a(x)) + self.shared(self.b(x))
        return self.out((self.twice(self.c(y)) + self.twice(y)).flatten(1))


class _OtherAxis(torch.nn.Module):
    """A Linear over the last axis whose batch norm normalises another one: `fuse` refuses it."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(6, 6)
        self.bn = torch.nn.BatchNorm1d(18)
        self.out = torch.nn.Linear(18 * 6, 2)

    def forward(self, x):
        return self.out(self.bn(self.fc(x.flatten(1, 2))).flatten(1))


class _OneOutput(torch.nn.Module):
    """A one-output Linear before a batch norm of 18 channels: `fuse` refuses it, and its weights
    alone would broadcast to 18 outputs."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(6, 1)
        self.bn = torch.nn.BatchNorm1d(18)
        self.out = torch.nn.Linear(18, 2)

    def forward(self, x):
        return self.out(self.bn(self.fc(x.flatten(1, 2))).flatten(1))


class _ReadWeight(torch.nn.Module):
    """A batch norm whose weight the forward pass also reads."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.out = torch.nn.Linear(4 * 36, 2)

    def forward(self, x):
        return self.out((self.bn(self.conv(x)) * self.bn.weight[None, :, None, None]).flatten(1))


class _Chained(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.first, self.second = torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4)
        self.out = torch.nn.Linear(64, 2)

    def forward(self, x):
        return self.out(self.second(self.first(self.conv(x))).flatten(1))


@pytest.mark.parametrize(
    "make",
    [
        lambda: build_model("resnet18", 2, 32),
        lambda: build_model("vgg16", 2, 32),
        _FoldCases,
        _Untraceable,
        _Unusual,
        _OtherAxis,
        _OneOutput,
        _ReadWeight,
        _Chained,
    ],
)
def test_preparing_folds_exactly_as_fx_fuse(make):
    """The engine folds batch norm itself (no copy of every weight, no generated module), with
    FX's `fuse` as the reference: the same layers folded, the same arithmetic, so the same
    outputs to the bit; where folding by module name could differ from `fuse` it calls `fuse`."""
    from torch.fx.experimental.optimization import fuse

    from gadlib.attributions import fold_pairs, prepare_model
    from gadlib.convs import use_small_map_convs

    torch.manual_seed(0)
    model = make()
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)):
        bn.running_mean.normal_(0, 0.2)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 1.5)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        reference = fuse(model)
    except Exception:
        reference = copy.deepcopy(model)
    use_small_map_convs(reference)  # as the engine's copy: 1 x 1 and 2 x 2 maps as linear layers
    ours = prepare_model(model, torch.device("cpu"))
    bns = lambda m: sum(isinstance(b, torch.nn.modules.batchnorm._BatchNorm) for b in m.modules())  # noqa: E731
    assert bns(ours) == bns(reference)
    if make is _FoldCases:
        assert bns(ours) == 1  # the batch norm after a convolution whose output feeds the skip
    if make is _Untraceable:
        assert bns(ours) == 3
    if make is _Chained:
        assert fold_pairs(model) == [("conv", "first"), ("conv", "second")] and bns(ours) == 0
    if make is _Unusual:
        assert fold_pairs(model) is None and bns(ours) == 1  # fuse folds where it can
    if make is _OtherAxis:
        assert bns(ours) == 1  # fuse fails, so nothing is folded
    if make in (_OneOutput, _ReadWeight):
        assert fold_pairs(model) is None
    size = 6 if isinstance(make, type) else 32  # the hand-made models take 6 x 6 images
    x = torch.randn(4, 3, size, size)
    with torch.no_grad():
        assert torch.equal(ours(x), reference(x))
        torch.testing.assert_close(ours(x), model(x), rtol=1e-4, atol=1e-5)  # and the model's function
    assert all(p.requires_grad for p in model.parameters())  # the user's model is not frozen
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_prepared_model_is_reused_until_its_weights_change():
    from gadlib import attributions

    model = _with_random_batch_norm(build_model("resnet18", 2, 32))
    x = torch.randn(2, 3, 32, 32)
    device = torch.device("cpu")
    assert attributions.prepared(model, device) is attributions.prepared(model, device)
    before = attribution_maps([model], x, ["saliency"], progress=False)["saliency"]
    other = _with_random_batch_norm(build_model("resnet18", 2, 32))
    model.load_state_dict(other.state_dict())  # in place, as a training step or a reload does
    after = attribution_maps([model], x, ["saliency"], progress=False)["saliency"]
    fresh = attribution_maps([other], x, ["saliency"], progress=False)["saliency"]
    assert not torch.equal(before, after)
    torch.testing.assert_close(after, fresh)


def test_unknown_method_is_a_one_line_error(linear_model):
    with pytest.raises(GADInputError, match="unknown attribution method 'gradcam'") as err:
        attribution_maps([linear_model], torch.randn(1, 3, 6, 6), ["gradcam"], progress=False)
    assert "\n" not in str(err.value)


def test_cudnn_autotuning_is_on_for_cuda_work_only_and_the_callers_setting_comes_back():
    """The engine autotunes cuDNN's convolutions on CUDA for its own work, not for the process:
    the caller's setting is back after, also on a raise."""
    from gadlib.attributions import cudnn_autotuned

    before = torch.backends.cudnn.benchmark
    try:
        for setting in (False, True):
            torch.backends.cudnn.benchmark = setting
            with cudnn_autotuned(torch.device("cuda")):
                assert torch.backends.cudnn.benchmark is True
            assert torch.backends.cudnn.benchmark is setting
            with cudnn_autotuned(torch.device("cpu")):
                assert torch.backends.cudnn.benchmark is setting
            with pytest.raises(RuntimeError, match="inside"), cudnn_autotuned(torch.device("cuda")):
                raise RuntimeError("inside")
            assert torch.backends.cudnn.benchmark is setting
    finally:
        torch.backends.cudnn.benchmark = before


def test_both_engine_entries_do_their_work_under_the_cudnn_setting_of_the_models_device(monkeypatch):
    """On the CPU the wiring: attribution_maps and smoothgrad_maps make every map inside
    cudnn_autotuned, entered with the model's device (the GPU test below runs it for real)."""
    from contextlib import contextmanager

    from gadlib import attributions

    inside, entered = [], []
    real = attributions._maps_one_model

    @contextmanager
    def recording(device):
        entered.append(device)
        inside.append(True)
        yield
        inside.pop()

    def maps_one_model(*args, **kwargs):
        assert inside, "a map made outside cudnn_autotuned"
        return real(*args, **kwargs)

    monkeypatch.setattr(attributions, "cudnn_autotuned", recording)
    monkeypatch.setattr(attributions, "_maps_one_model", maps_one_model)
    model = build_model("resnet18", 2, 32).eval()
    x = torch.randn(3, 3, 32, 32)
    attribution_maps([model], x, ["saliency"], progress=False)
    attributions.smoothgrad_maps(model, x, ["saliency"], samples=2)
    assert entered == [torch.device("cpu"), torch.device("cpu")]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_the_engine_leaves_cudnns_setting_as_it_found_it():
    from gadlib.attributions import smoothgrad_maps

    model = build_model("resnet18", 2, 32).cuda().eval()
    x = torch.randn(4, 3, 32, 32)
    before = torch.backends.cudnn.benchmark
    try:
        torch.backends.cudnn.benchmark = False
        attribution_maps([model], x, ["saliency"], progress=False)
        smoothgrad_maps(model, x, ["saliency"], samples=2)
        assert torch.backends.cudnn.benchmark is False
    finally:
        torch.backends.cudnn.benchmark = before


def test_map_agreement_does_not_count_two_maps_zeros_as_agreeing():
    """Sparse maps (Guided Backprop's, Deconvolution's) are mostly 0: ranked by position, the
    zeros of two maps whose one bright pixel differs would agree almost perfectly."""
    a, b = torch.zeros(1, 8, 8), torch.zeros(1, 8, 8)
    a[0, 0, 0], b[0, 7, 7] = 1.0, 1.0
    rho, jaccard = map_agreement(a, b)
    assert float(rho[0]) < 0 and float(jaccard[0]) == 0
    assert float(map_agreement(a, a)[0][0]) == pytest.approx(1.0)
    zeros = torch.zeros(2, 8, 8)  # an all-zero map (a dead ReLU's) and its copy are the same map
    assert map_agreement(zeros, zeros)[0].tolist() == [1.0, 1.0]
    assert map_agreement(zeros, a.expand(2, 8, 8))[0].tolist() == [0.0, 0.0]
