"""gadlib.seeding.seeded: the draws of torch.manual_seed, without touching the caller's random
state (nor, on a machine with several GPUs, the devices the work does not run on); and the
library calls that seed their own work (smoothgrad's noise, sanity's random layers, the
pipeline's classifier) keep the caller's state too."""

import pytest
import torch

from gadlib.seeding import seeded


def _draws(device="cpu"):
    return torch.rand(4, device=device), torch.randn(3, device=device)


def _after_manual_seed(seed, device="cpu"):
    with torch.random.fork_rng(devices=[torch.device(device)] if str(device) != "cpu" else []):
        torch.manual_seed(seed)
        return _draws(device)


def test_the_draws_inside_are_torch_manual_seeds_and_the_callers_state_comes_back():
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    with seeded(7):
        inside = _draws()
    assert torch.equal(torch.rand(5), expected)  # the caller goes on as if nothing was drawn
    for a, b in zip(inside, _after_manual_seed(7)):
        assert torch.equal(a, b)
    with seeded(8):
        assert not torch.equal(_draws()[0], inside[0])  # another seed, other draws


def test_numpys_global_draws_are_the_seeds_and_come_back_too():
    """captum's GradientShap draws from NumPy's global generator."""
    import numpy as np

    np.random.seed(5)
    expected = np.random.rand(3)
    np.random.seed(5)
    with seeded(7):
        inside = np.random.rand(2)
    assert np.array_equal(np.random.rand(3), expected)
    np.random.seed(7)
    assert np.array_equal(inside, np.random.rand(2))


def test_the_state_comes_back_when_the_block_raises():
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    with pytest.raises(KeyboardInterrupt), seeded(9):
        torch.rand(10)
        raise KeyboardInterrupt
    assert torch.equal(torch.rand(2), expected)


def test_smoothgrad_and_random_layers_are_the_seeds_whatever_the_callers_state(linear_model):
    from gadlib import sanity
    from gadlib.attributions import smoothgrad_maps
    from gadlib.models import build_model

    x = torch.rand(3, 3, 6, 6)
    model = build_model("resnet18", 2, 32).eval()
    names = sanity.layers(model)[:2]
    made = []
    for state in (1, 2):
        torch.manual_seed(state)
        expected = torch.rand(3)
        torch.manual_seed(state)
        maps = smoothgrad_maps(linear_model, x, ["input_x_gradient"], samples=3, noise=0.5, seed=4)
        layer = sanity.randomised(model, names, seed=5).fc.weight
        assert torch.equal(torch.rand(3), expected), "a seeded call changed the caller's random state"
        made.append((maps["input_x_gradient"], layer))
    assert torch.equal(made[0][0], made[1][0]) and torch.equal(made[0][1], made[1][1])
    # the noise is torch.manual_seed(4)'s, drawn as captum's NoiseTunnel draws it; for a linear
    # model Gradient x Input's mean over the noisy copies is the weights times their mean
    torch.manual_seed(4)
    noisy = x.repeat_interleave(3, 0) + torch.normal(0, torch.full((9, 3, 6, 6), 0.5 * float(x.max() - x.min())))
    weights = linear_model[1].weight.detach().view(2, 1, 3, 6, 6)
    expected = (weights * noisy.view(3, 3, 3, 6, 6).mean(1)).abs().sum(-3)
    assert torch.allclose(made[0][0], expected, atol=1e-5)


def test_the_pipelines_classifier_is_the_seeds_whatever_the_callers_state(tmp_path):
    import dataclasses

    from gadlib import runfiles, stages
    from gadlib.config import RunConfig
    from gadlib.data import synthetic_dataset

    cfg = RunConfig.build("smoke", n_train=32, n_test=8)
    data = synthetic_dataset(cfg)
    split = runfiles.split_fingerprint(data.train)
    weights = []
    for state in (1, 2):
        torch.manual_seed(state)
        expected = torch.rand(3)
        torch.manual_seed(state)
        run = dataclasses.replace(cfg, seed=3, runs_dir=str(tmp_path / str(state)))  # trained, not read back
        model, _ = stages.original_classifier(run, data, torch.device("cpu"), split)
        assert torch.equal(torch.rand(3), expected), "training the classifier changed the caller's random state"
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ["cuda", "last"])
def test_on_a_gpu_the_draws_are_torch_manual_seeds_the_state_comes_back_and_no_other_gpu_is_reseeded(name):
    """The device "cuda" (no index) is what pick_device gives; "last", a model on the last GPU."""
    device = torch.device("cuda", torch.cuda.device_count() - 1) if name == "last" else torch.device("cuda")
    for a, b in zip(_after_manual_seed(7, device), _with_seeded(7, device)):
        assert torch.equal(a, b)
    before = [torch.cuda.get_rng_state(i) for i in range(torch.cuda.device_count())]
    with pytest.raises(KeyboardInterrupt), seeded(7, device):
        torch.rand(4, device=device)
        raise KeyboardInterrupt
    assert all(torch.equal(torch.cuda.get_rng_state(i), b) for i, b in enumerate(before))


def _with_seeded(seed, device):
    with seeded(seed, device):
        return _draws(device)


def test_seeding_on_the_cpu_calls_fork_rng_as_torch_2_11_takes_it(monkeypatch):
    """The GPU machines' image has torch 2.11, whose fork_rng defaults device_type to "cuda" and
    turns it into a torch.device: None, which torch 2.14 takes, would fail every seeded CPU step."""
    real = torch.random.fork_rng

    def fork_rng_2_11(devices=None, enabled=True, _caller="fork_rng", _devices_kw="devices", device_type="cuda"):
        torch.device(device_type)  # as 2.11 does first: None is no device
        return real(devices=devices, enabled=enabled, device_type=device_type)

    monkeypatch.setattr(torch.random, "fork_rng", fork_rng_2_11)
    with seeded(3):
        a = torch.rand(2)
    with seeded(3, "cpu"):
        b = torch.rand(2)
    assert torch.equal(a, b)
