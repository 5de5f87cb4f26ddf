"""Single-pixel convolutions as linear layers (gadlib/convs.py): the same function and gradients
as the convolution wherever the swap applies, the convolution itself everywhere else, and models
that come back as plain torchvision models."""

import itertools

import pytest
import torch
from torch import nn

from gadlib.attributions import prepare_model
from gadlib.convs import SinglePixelConv2d, _window, single_pixel_convs
from gadlib.models import build_model
from gadlib.training import train_support


def _linear_path_taken(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    return _window(conv, *x.shape[-2:]) is not None


def test_same_function_and_gradients_as_the_convolution():
    """Every kernel, padding, stride and input size up to the kernel's: where the output is one
    pixel whose window holds the input, values and all three gradients equal the convolution's
    (float64, so rounding cannot hide a wrong tap); elsewhere the convolution runs as it is."""
    torch.manual_seed(0)
    taken = fallback = 0
    for k, s in itertools.product((1, 2, 3, 5, 7), (1, 2, 3)):
        for p, h, w in itertools.product(range(k), range(1, k + 2), range(1, k + 2)):
            if h + 2 * p < k or w + 2 * p < k:
                continue  # no output at all: the convolution itself raises
            plain = nn.Conv2d(3, 4, k, stride=s, padding=p).double()
            fast = nn.Conv2d(3, 4, k, stride=s, padding=p).double()
            fast.load_state_dict(plain.state_dict())
            fast.__class__ = SinglePixelConv2d
            x = torch.randn(2, 3, h, w, dtype=torch.float64, requires_grad=True)
            y_plain, y_fast = plain(x), fast(x)
            assert y_fast.shape == y_plain.shape
            g = torch.randn_like(y_plain)
            grads_plain = torch.autograd.grad(y_plain, (x, plain.weight, plain.bias), g)
            grads_fast = torch.autograd.grad(y_fast, (x, fast.weight, fast.bias), g)
            if _linear_path_taken(fast, x):
                taken += 1
                assert y_plain.shape[-2:] == (1, 1)
                assert "Convolution" not in type(y_fast.grad_fn).__name__  # the linear path ran
                torch.testing.assert_close(y_fast, y_plain, rtol=1e-12, atol=1e-12)
                for a, b in zip(grads_fast, grads_plain):
                    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
                # taps that read only padding get no gradient, as in the convolution
                assert (grads_fast[1] == 0).sum() == (grads_plain[1] == 0).sum()
            else:
                fallback += 1
                assert torch.equal(y_fast, y_plain)  # the very same kernel
    assert taken > 50 and fallback > 50  # both paths exercised


@pytest.mark.parametrize(
    "options, size, linear",
    [
        (dict(padding=2, dilation=2, stride=3), 1, False),  # dilated taps: another window
        (dict(padding=1, groups=3), 1, False),
        (dict(padding=1, padding_mode="replicate"), 1, False),  # padding that is not zeros
        (dict(padding="same"), 1, False),
        (dict(padding=1, bias=False), 1, True),
        (dict(padding=1, stride=2), 2, True),  # run on a channels_last input below
    ],
)
def test_other_convolutions_keep_their_kernel(options, size, linear):
    torch.manual_seed(0)
    plain = nn.Conv2d(3, 3, 3, **options).double()
    fast = nn.Conv2d(3, 3, 3, **options).double()
    fast.load_state_dict(plain.state_dict())
    fast.__class__ = SinglePixelConv2d
    x = torch.randn(2, 3, size, size, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    y_plain, y_fast = plain(x), fast(x)
    assert ("Convolution" not in type(y_fast.grad_fn).__name__) == linear
    torch.testing.assert_close(y_fast, y_plain, rtol=1e-12, atol=1e-12)


def _single_pixel_convs_of(arch: str, size: int) -> set[str]:
    model = build_model(arch, 2, size).eval()
    inputs = {}
    hooks = [
        m.register_forward_pre_hook(lambda m, inp, name=name: inputs.__setitem__(name, inp[0]))
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d)
    ]
    model(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    return {name for name, x in inputs.items() if _linear_path_taken(model.get_submodule(name), x)}


def test_only_resnet18_at_32_px_takes_the_linear_path():
    """Four of ResNet18's convolutions have a one-pixel output at 32 px (layer4's 3 x 3s); none
    of VGG16's, and none at 64 px or 224 px, so the `cpu` and `paper` profiles run as before."""
    last_stage = {"layer4.0.conv1", "layer4.0.conv2", "layer4.1.conv1", "layer4.1.conv2"}
    assert _single_pixel_convs_of("resnet18", 32) == last_stage
    for arch, size in (("vgg16", 32), ("resnet18", 64), ("vgg16", 64), ("resnet18", 224), ("vgg16", 224)):
        assert _single_pixel_convs_of(arch, size) == set(), (arch, size)


def test_models_come_back_plain_and_prepared_copies_stay_folded():
    model = build_model("resnet18", 2, 32)
    keys = list(model.state_dict())
    with pytest.raises(RuntimeError, match="boom"):
        with single_pixel_convs(model):
            assert all(type(m) is SinglePixelConv2d for m in model.modules() if isinstance(m, nn.Conv2d))
            raise RuntimeError("boom")
    assert all(type(m) is nn.Conv2d for m in model.modules() if isinstance(m, nn.Conv2d))
    support, _ = train_support(model, torch.randn(8, 3, 32, 32), torch.randn(8, 2), 1, 1e-4, 4, precision="fp32")
    assert all(type(m) is nn.Conv2d for m in support.modules() if isinstance(m, nn.Conv2d))
    assert list(support.state_dict()) == keys
    # batch norm is folded first (FX's fusion matches plain nn.Conv2d only), then the swap,
    # also for a model that is swapped already (a copy made inside the with block)
    with single_pixel_convs(model):
        ready = prepare_model(model, torch.device("cpu"))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in ready.modules())
    assert all(type(m) is SinglePixelConv2d for m in ready.modules() if isinstance(m, nn.Conv2d))
    x = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(ready(x), model.eval()(x), rtol=1e-4, atol=1e-5)
