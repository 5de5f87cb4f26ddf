"""Convolutions on maps small enough that every output pixel's window holds the whole input, as
linear layers (gadlib/convs.py): the same function and gradients as the convolution wherever the
swap applies, the convolution itself everywhere else, the one-pixel case computed as it was since
9c92ee7, and models that come back as plain torchvision models."""

import itertools

import pytest
import torch
from torch import nn

from gadlib import convs
from gadlib.attributions import prepare_model
from gadlib.convs import SmallMapConv2d, _outputs, small_map_convs
from gadlib.models import build_model
from gadlib.training import train_support


def _linear_path_taken(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    return _outputs(conv, *x.shape[-2:]) is not None


def _compare_with_the_convolution(k, s, p, h, w) -> tuple[int, int] | None:
    """One convolution (kernel, stride and padding per axis or for both), float64: the output
    size where the linear path ran, with values and all three gradients equal to the
    convolution's (rounding cannot hide a wrong tap); None where the convolution itself ran."""
    plain = nn.Conv2d(3, 4, k, stride=s, padding=p).double()
    fast = nn.Conv2d(3, 4, k, stride=s, padding=p).double()
    fast.load_state_dict(plain.state_dict())
    fast.__class__ = SmallMapConv2d
    x = torch.randn(2, 3, h, w, dtype=torch.float64, requires_grad=True)
    y_plain, y_fast = plain(x), fast(x)
    assert y_fast.shape == y_plain.shape
    if not _linear_path_taken(fast, x):
        assert torch.equal(y_fast, y_plain)  # the very same kernel
        return None
    assert "Convolution" not in type(y_fast.grad_fn).__name__  # the linear path ran
    torch.testing.assert_close(y_fast, y_plain, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(y_plain)
    grads_plain = torch.autograd.grad(y_plain, (x, plain.weight, plain.bias), g)
    grads_fast = torch.autograd.grad(y_fast, (x, fast.weight, fast.bias), g)
    for a, b in zip(grads_fast, grads_plain):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # taps that read only padding get no gradient, as in the convolution
    assert (grads_fast[1] == 0).sum() == (grads_plain[1] == 0).sum()
    return tuple(y_plain.shape[-2:])


def test_same_function_and_gradients_as_the_convolution():
    """Every kernel, padding, stride and input size up to the kernel's: where every output pixel's
    window holds the input, values and all three gradients equal the convolution's; elsewhere the
    convolution runs as it is."""
    torch.manual_seed(0)
    taken, fallback, outputs = 0, 0, set()
    for k, s in itertools.product((1, 2, 3, 5, 7), (1, 2, 3)):
        for p, h, w in itertools.product(range(k), range(1, k + 2), range(1, k + 2)):
            if h + 2 * p < k or w + 2 * p < k:
                continue  # no output at all: the convolution itself raises
            out = _compare_with_the_convolution(k, s, p, h, w)
            taken, fallback = taken + (out is not None), fallback + (out is None)
            outputs.add(out)
    # kernels, strides and paddings that differ between the axes (a swapped axis would show)
    for k, s, p, (h, w) in [
        ((3, 1), (1, 1), (1, 0), (2, 1)),
        ((1, 3), (1, 2), (0, 1), (1, 2)),
        ((3, 5), (1, 1), (1, 2), (2, 3)),
        ((5, 3), (2, 1), (2, 1), (3, 2)),
        ((3, 5), (2, 1), (2, 2), (1, 3)),
    ]:
        out = _compare_with_the_convolution(k, s, p, h, w)
        assert out is not None, (k, s, p, h, w)
        outputs.add(out)
    assert taken > 50 and fallback > 50  # both paths exercised
    # one-pixel outputs, wider ones (a gathered weight), and outputs one pixel on one axis only
    assert {(1, 1), (2, 2), (3, 3), (1, 2), (2, 1)} <= outputs


def test_a_one_pixel_output_is_computed_as_in_9c92ee7():
    """ResNet18's 1 x 1 maps at 32 px: the weight is the kernel's window as it lies, bit for bit
    the computation the committed runs since 9c92ee7 trained with (not a gathered copy)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, padding=1)
    for h, w, window in ((1, 1, (slice(1, 2), slice(1, 2))), (2, 2, (slice(1, 3), slice(1, 3)))):
        fast = nn.Conv2d(8, 16, 3, padding=1, stride=2 if h == 2 else 1)
        fast.load_state_dict(conv.state_dict())
        fast.__class__ = SmallMapConv2d
        x = torch.randn(64, 8, h, w, requires_grad=True)
        then = nn.functional.linear(x.flatten(1), conv.weight[:, :, window[0], window[1]].flatten(1), conv.bias)
        now = fast(x)
        assert torch.equal(now, then[:, :, None, None])
        g = torch.randn_like(now)  # and the same gradients, bit for bit, for training
        grads_then = torch.autograd.grad(then, (x, conv.weight, conv.bias), g.flatten(1))
        for a, b in zip(torch.autograd.grad(now, (x, fast.weight, fast.bias), g), grads_then):
            assert torch.equal(a, b)


@pytest.mark.parametrize(
    "options, size, linear",
    [
        (dict(padding=2, dilation=2, stride=3), 1, False),  # dilated taps: another window
        (dict(padding=1, groups=3), 1, False),
        (dict(padding=1, padding_mode="replicate"), 1, False),  # padding that is not zeros
        (dict(padding="same"), 1, False),
        (dict(padding=1, bias=False), 1, True),
        (dict(padding=1, stride=2), 2, True),  # run on a channels_last input below
        (dict(padding=1), 2, True),  # a 2 x 2 output, its weight gathered
    ],
)
def test_other_convolutions_keep_their_kernel(options, size, linear):
    torch.manual_seed(0)
    plain = nn.Conv2d(3, 3, 3, **options).double()
    fast = nn.Conv2d(3, 3, 3, **options).double()
    fast.load_state_dict(plain.state_dict())
    fast.__class__ = SmallMapConv2d
    x = torch.randn(2, 3, size, size, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    y_plain, y_fast = plain(x), fast(x)
    assert ("Convolution" not in type(y_fast.grad_fn).__name__) == linear
    torch.testing.assert_close(y_fast, y_plain, rtol=1e-12, atol=1e-12)


def _small_map_convs_of(arch: str, size: int) -> dict[str, tuple[int, int]]:
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
    found = {name: _outputs(model.get_submodule(name), *x.shape[-2:]) for name, x in inputs.items()}
    return {name: out for name, out in found.items() if out is not None}


def test_which_convolutions_take_the_linear_path():
    """At 32 px ResNet18's 3 x 3s on 1 x 1 maps (layer4) and 2 x 2 maps (layer3), and VGG16's
    last block (2 x 2 maps); at 64 px ResNet18's layer4 (2 x 2 maps, so the `cpu` profile's
    ResNet18 computes other rounding since); none at 224 px, so the `paper` profile runs as before.
    The strided first convolution of a stage, and the 1 x 1 downsampling ones, stay convolutions."""
    one, two = (1, 1), (2, 2)
    assert _small_map_convs_of("resnet18", 32) == {
        **{f"layer3.{name}": two for name in ("0.conv2", "1.conv1", "1.conv2")},
        **{f"layer4.{name}": one for name in ("0.conv1", "0.conv2", "1.conv1", "1.conv2")},
    }
    assert _small_map_convs_of("vgg16", 32) == {"features.24": two, "features.26": two, "features.28": two}
    assert _small_map_convs_of("resnet18", 64) == {f"layer4.{n}": two for n in ("0.conv2", "1.conv1", "1.conv2")}
    for arch, size in (("vgg16", 64), ("resnet18", 224), ("vgg16", 224)):
        assert _small_map_convs_of(arch, size) == {}, (arch, size)


@pytest.mark.parametrize("arch", ["resnet18", "vgg16"])
def test_whole_models_at_32_px_give_the_same_loss_and_gradients(arch):
    """In float64, a training step's loss and every parameter's gradient with the swap equal
    those of the plain convolutions: trained in fp32, the two differ by rounding only."""
    torch.manual_seed(0)
    model = build_model(arch, 2, 32).double().train()
    x, y = torch.randn(4, 3, 32, 32, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    results = []
    for enabled in (False, True):
        convs.ENABLED = enabled
        try:
            with small_map_convs(model):
                torch.manual_seed(1)  # the same dropout masks (VGG16's classifier)
                loss = nn.functional.mse_loss(model(x), y)
                results.append((loss, torch.autograd.grad(loss, list(model.parameters()))))
        finally:
            convs.ENABLED = True
    (loss_plain, grads_plain), (loss_fast, grads_fast) = results
    torch.testing.assert_close(loss_fast, loss_plain, rtol=1e-12, atol=0)
    for a, b in zip(grads_fast, grads_plain):  # to the tensor's largest: elements cancel
        assert (a - b).abs().max() <= 1e-10 * b.abs().max()


def test_a_kept_weight_follows_the_weight():
    """The engine's frozen models keep the gathered weight between calls; an in-place change of
    the weight (its version counter moves) is seen at the next call, and swapping back drops it."""
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 4, 3, padding=1).requires_grad_(False)
    x = torch.randn(2, 4, 2, 2)
    with small_map_convs(conv):
        first = conv(x)
        assert "_kept_weight" in conv.__dict__
        torch.testing.assert_close(first, nn.functional.conv2d(x, conv.weight, conv.bias, padding=1))
        with torch.no_grad():
            conv.weight.mul_(2)
        again = conv(x)  # gathered again, not the kept one
        torch.testing.assert_close(again, nn.functional.conv2d(x, conv.weight, conv.bias, padding=1))
        assert not torch.allclose(first, again)
        conv.weight.data = conv.weight.data * 3  # another storage, its version counter unmoved
        torch.testing.assert_close(conv(x), nn.functional.conv2d(x, conv.weight, conv.bias, padding=1))
    assert "_kept_weight" not in conv.__dict__
    # a weight that takes gradients is gathered in every call, never kept; inference mode keeps nothing
    trained = nn.Conv2d(4, 4, 3, padding=1)
    convs._tap_index.cache_clear()  # so that inference mode makes the tap index first
    with small_map_convs(trained):
        with torch.inference_mode():
            trained(x)
        with torch.no_grad():
            trained(x)
        assert "_kept_weight" not in trained.__dict__
        trained(x.requires_grad_()).sum().backward()  # after inference mode, autograd still works
        assert trained.weight.grad is not None


def test_models_come_back_plain_and_prepared_copies_stay_folded():
    model = build_model("resnet18", 2, 32)
    keys = list(model.state_dict())
    with pytest.raises(RuntimeError, match="boom"):
        with small_map_convs(model):
            assert all(type(m) is SmallMapConv2d for m in model.modules() if isinstance(m, nn.Conv2d))
            raise RuntimeError("boom")
    assert all(type(m) is nn.Conv2d for m in model.modules() if isinstance(m, nn.Conv2d))
    support, _ = train_support(model, torch.randn(8, 3, 32, 32), torch.randn(8, 2), 1, 1e-4, 4, precision="fp32")
    assert all(type(m) is nn.Conv2d for m in support.modules() if isinstance(m, nn.Conv2d))
    assert list(support.state_dict()) == keys
    # batch norm is folded first (FX's fusion matches plain nn.Conv2d only), then the swap,
    # also for a model that is swapped already (a copy made inside the with block)
    with small_map_convs(model):
        ready = prepare_model(model, torch.device("cpu"))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in ready.modules())
    assert all(type(m) is SmallMapConv2d for m in ready.modules() if isinstance(m, nn.Conv2d))
    x = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(ready(x), model.eval()(x), rtol=1e-4, atol=1e-5)
