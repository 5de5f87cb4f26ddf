"""Bad input gives one clear line naming the problem; caching reuses and recomputes correctly."""

import dataclasses
import sys
import warnings

import pytest
import torch

from gadlib import GADInputError, RunConfig, runfiles
from gadlib.data import load_dataset
from gadlib.models import build_model


def one_line_error(match, fn, *args, **kwargs):
    with pytest.raises(GADInputError, match=match) as err:
        fn(*args, **kwargs)
    assert "\n" not in str(err.value)


def test_an_image_too_large_to_decode_is_skipped_and_listed(tmp_path, monkeypatch):
    from PIL import Image

    from gadlib.data import decode_images

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # so that a small file is a decompression bomb
    Image.new("RGB", (40, 30)).save(tmp_path / "huge.png")
    failures = []
    images, kept = decode_images([tmp_path / "huge.png"], 8, failures=failures)
    assert kept == [] and len(failures) == 1 and "huge.png" in failures[0]


def test_a_checkpoint_far_below_chance_is_told_its_class_order(recwarn):
    from gadlib.stages import _warn_if_chance

    cfg = RunConfig.build(profile="smoke", checkpoint="mine.pt")
    _warn_if_chance(cfg, 0.1)
    _warn_if_chance(RunConfig.build(profile="smoke"), 0.55)
    said = [str(w.message) for w in recwarn]
    assert "other class order" in said[0] and "train longer" in said[1]


def test_unknown_names_and_empty_alphas():
    one_line_error("unknown architecture 'alexnet'", RunConfig.build, profile="smoke", arch="alexnet")
    one_line_error("unknown architecture 'alexnet'", build_model, "alexnet")
    one_line_error("unknown attribution method 'lrp'", RunConfig.build, profile="smoke", methods=["lrp"])
    one_line_error("alphas is empty", RunConfig.build, profile="smoke", alphas=[])
    one_line_error("unknown profile 'huge'", RunConfig.build, profile="huge")
    one_line_error("unknown parameter", RunConfig.build, profile="smoke", alpha=[2])
    one_line_error(r"'alpha' \(did you mean alphas\?\)", RunConfig.build, profile="smoke", alpha=[2])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"classes": 5}, "classes must be a list"),
        ({"classes": "ab"}, "classes must be a list"),
        ({"classes": ["cat"]}, "classes must name two classes"),
        ({"classes": ["cat", "dog", "bird"]}, "classes must name two classes"),
        ({"classes": ["cat", "cat"]}, "names one class twice"),
        ({"dataset": "kaggle", "data_dir": "/x", "classes": ["cat", "Cat"]}, "names one class twice"),
        ({"dataset": "cub", "data_dir": "/x", "classes": ["(", "Sparrow"]}, "'\\(' is not a regular expression"),
        ({"hull_rules": []}, "hull_rules is empty"),
        ({"train_lr": "abc"}, "train_lr must be a number"),
        ({"support_lr": -1}, "support_lr must be > 0"),
        ({"ig_internal_batch": 0}, "ig_internal_batch must be a whole number >= 1"),
        ({"n_eval": float("nan")}, "n_eval must be a whole number, got nan"),  # was int()'s ValueError
        ({"ig_steps": float("inf")}, "ig_steps must be a whole number >= 1, got inf"),  # was an OverflowError
        ({"seed": 1.5}, "seed must be a whole number >= 0, got 1.5"),
        ({"seed": -1}, "seed must be a whole number >= 0, got -1"),  # the bootstraps' numpy refused it, after training
        ({"arch": "vgg16", "image_size": 16}, "image_size 16 is too small for vgg16: give image_size >= 32"),
        ({"methods": ["saliency", "saliency"]}, "methods names 'saliency' twice"),
        ({"hull_rules": ["top_q", "top_q"]}, "hull_rules names 'top_q' twice"),
        # synthetic data would ignore them, and write its results under <dataset>-<profile>
        ({"data_dir": "/x"}, "data_dir given with the synthetic dataset, which would ignore it: .*--dataset folder"),
        ({"classes": ["a", "b"]}, "classes given with the synthetic dataset"),
        ({"run_name": ""}, "run_name '' is not a folder name"),  # an unset $NAME: not <dataset>-<profile>
        ({"run_name": "."}, "run_name '.' is not a folder name"),  # runs/ itself
        ({"run_name": "/tmp/x"}, "run_name '/tmp/x' is not a folder name"),
        ({"run_name": "a/../b"}, "is not a folder name"),
        ({"support_lr": float("inf")}, "support_lr must be a finite number, got inf"),
        ({"consensus_q": float("nan")}, "consensus_q must be a finite number, got nan"),
        ({"alphas": [2, float("nan")]}, "alphas must be finite numbers, got nan"),
        ({"alphas": [-2, 4]}, "alpha -2 is negative: alpha is how far the classes are pushed apart"),  # GAD.fit's
        ({"alphas": [2, 4], "alphas_c2": [1, -1]}, "alpha -1 is negative"),
        ({"dataset": "cub", "data_dir": "/x", "classes": ["Warbler", "warbler_"]}, "names one class twice"),
        ({"device": "tpu"}, "unknown device 'tpu'"),
        ({"pretrained": "maybe"}, "pretrained must be True or False"),
        # one file per support (models/support_<a1>_<a2>.pt): two supports of one alpha would share it
        ({"alphas": [2, 4, 2]}, "two supports have alpha 2 / 2"),
        ({"alphas": [2, 2], "alphas_c2": [1, 1]}, "two supports have alpha 2 / 1"),
    ],
)
def test_settings_that_would_fail_late_or_mislead_are_refused_at_once(params, match):
    one_line_error(match, RunConfig.build, profile="smoke", **params)


def test_settings_as_the_command_line_spells_them_are_taken():
    assert RunConfig.build(profile="smoke", pretrained="true").pretrained is True  # -p pretrained=true
    assert RunConfig.build(profile="smoke", pretrained="False").pretrained is False
    two_folders = RunConfig.build(profile="smoke", dataset="folder", data_dir="/x", classes=["Cats", "cats"])
    assert two_folders.classes == ["Cats", "cats"]
    assert RunConfig.build(profile="smoke", device="cuda:1").device == "cuda:1"
    whole = RunConfig.build(profile="smoke", n_eval=8.0, seed=3.0)
    assert (whole.n_eval, whole.seed) == (8, 3)  # one spelling per value
    assert isinstance(whole.n_eval, int) and isinstance(whole.seed, int)


def test_a_run_name_as_a_sweep_names_its_points_is_taken():
    from gadlib.sweep import point_name

    points = [{"seed": 3, "consensus_q": 0.3}, {"alphas": [2, 4]}, {"train_lr": 1e20}, {"classes": ["a b", "c"]}]
    for name in ("my-run", "v1.2+fp32", *(f"sweep-1/{point_name(p)}" for p in points)):
        assert RunConfig.build(profile="smoke", run_name=name).name == name


def test_an_unknown_profile_from_the_environment_says_so(monkeypatch):
    monkeypatch.setenv("GAD_PROFILE", "smok")
    one_line_error(r"unknown profile 'smok' \(from the environment's GAD_PROFILE\)", RunConfig.build)
    one_line_error(r"unknown profile 'smok': choose", RunConfig.build, profile="smok")


def test_missing_data_folder(tmp_path):
    cfg = RunConfig.build(profile="smoke", dataset="folder", data_dir=str(tmp_path / "nope"), runs_dir=str(tmp_path))
    one_line_error("does not exist", load_dataset, cfg)


def test_class_folder_with_no_images(tmp_path):
    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs").mkdir()
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    cfg = RunConfig.build(profile="smoke", dataset="folder", data_dir=str(tmp_path), runs_dir=str(tmp_path / "runs"))
    one_line_error("class 'cats' has", load_dataset, cfg)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.pt"))  # nothing half-written


def test_cached_result_equals_fresh_and_changes_with_key(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return torch.randn(3)

    k1 = runfiles.stamp("x", RunConfig.build(profile="smoke"), ("seed", "n_eval"))
    k2 = runfiles.stamp("x", RunConfig.build(profile="smoke", n_eval=10), ("seed", "n_eval"))
    first = runfiles.cached(tmp_path / "x.pt", k1, compute)
    again = runfiles.cached(tmp_path / "x.pt", k1, compute)
    assert torch.equal(first, again) and len(calls) == 1
    changed = runfiles.cached(tmp_path / "x.pt", k2, compute)
    assert len(calls) == 2 and not torch.equal(first, changed)
    assert not list(tmp_path.glob(".*tmp"))


def test_stamps_depend_only_on_named_fields():
    a = RunConfig.build(profile="smoke")
    b = RunConfig.build(profile="smoke", ig_steps=9)
    key = lambda cfg, fields: runfiles.stamp("s", cfg, fields)["key"]  # noqa: E731  a one-line helper
    assert key(a, runfiles.SUPPORT_FIELDS) == key(b, runfiles.SUPPORT_FIELDS)
    assert key(a, runfiles.COMPLEXITY_FIELDS) != key(b, runfiles.COMPLEXITY_FIELDS)


def test_synthetic_data_is_deterministic_and_masks_mark_the_object(tmp_path):
    from gadlib.synthetic import make_synthetic

    x1, y1, m1 = make_synthetic(6, 32, seed=3)
    x2, y2, m2 = make_synthetic(6, 32, seed=3)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and torch.equal(m1, m2)
    assert y1.tolist() == [0, 1, 0, 1, 0, 1]
    assert (m1.flatten(1).sum(1) > 10).all()


def test_a_model_a_run_stored_is_taken_as_a_checkpoint_at_its_own_size(tmp_path):
    """runs/<run>/<arch>/models/original.pt holds the weights under the run's stamp: they load
    as the model the run trained, and another architecture or size is named from the stamp."""
    from gadlib.models import load_classifier

    cfg = RunConfig.build(profile="smoke", image_size=40)
    model = build_model("resnet18", 2, 40)
    stored = tmp_path / "original.pt"
    runfiles.save(
        stored,
        {"state": model.state_dict(), "fingerprint": "x"},
        runfiles.stamp("original", cfg, ("arch", "image_size")),
    )
    loaded = load_classifier(stored, "resnet18", 40)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    one_line_error(
        "a resnet18 a run of this pipeline trained, not a vgg16: give --archs resnet18",
        load_classifier,
        stored,
        "vgg16",
        40,
    )
    one_line_error("trained at image_size 40: give -p image_size=40", load_classifier, stored, "resnet18", 64)
    runfiles.save(tmp_path / "maps.pt", {"maps": torch.zeros(2)}, runfiles.stamp("attributions", cfg, ("arch",)))
    one_line_error("is a run's stored file, not a model", load_classifier, tmp_path / "maps.pt", "resnet18", 40)
    support = tmp_path / "support_2_2.pt"  # beside original.pt, with the same shape: not the classifier
    runfiles.save(support, {"state": model.state_dict()}, runfiles.stamp("support", cfg, ("arch", "image_size")))
    one_line_error("is a run's support model, not its original classifier", load_classifier, support, "resnet18", 40)


def test_a_runs_original_whose_training_images_are_this_runs_test_images_is_warned_of(tmp_path):
    """A run's original keeps its training files: where this run's split puts some of them among
    its test images (other data settings), the run is told how many; under the same split, or
    with any other checkpoint, nothing is said."""
    from PIL import Image

    from gadlib import stages
    from gadlib.errors import GADWarning
    from gadlib.models import load_checkpoint

    def checked(path):  # as notebook 02 reads the checkpoint, and checks it against the run's split
        mine = dataclasses.replace(cfg, checkpoint=str(path))
        return stages._checkpoint_train_files(mine, data, load_checkpoint(path, "resnet18", 32)[1])

    for c in ("cats", "dogs"):
        (tmp_path / "pets" / c).mkdir(parents=True)
        for i in range(10):
            Image.new("RGB", (12, 12), (20 * i, 0, 0)).save(tmp_path / "pets" / c / f"{i}.png")
    cfg = RunConfig.build(
        profile="smoke", dataset="folder", data_dir=str(tmp_path / "pets"), runs_dir=str(tmp_path / "runs"), n_eval=2
    )
    data = load_dataset(cfg)
    model = build_model("resnet18", 2, 32)
    leaked = [*data.train.paths[:-3], *data.test.paths[:3]]
    elsewhere = dataclasses.replace(cfg, data_dir="/elsewhere/pets")  # the pack where the run that trained it had it
    moved = [p.replace(str(tmp_path / "pets"), "/elsewhere/pets") for p in leaked]
    # another pack that is still there, with the same file names: other images, not these
    (tmp_path / "other").mkdir()
    other = dataclasses.replace(cfg, data_dir=str(tmp_path / "other"))
    same_names = [p.replace(str(tmp_path / "pets"), str(tmp_path / "other")) for p in leaked]
    cases = ((data.train.paths, 0, cfg), (leaked, 3, cfg), (moved, 3, elsewhere), (same_names, 0, other))
    for trained_on, seen, made in cases:
        stored = tmp_path / f"original_{seen}_{made.data_dir.replace('/', '_')}.pt"
        record = {"state": model.state_dict(), "train_files": list(trained_on)}
        runfiles.save(stored, record, runfiles.stamp("original", made, runfiles.MODEL_FIELDS))
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            assert checked(stored) == list(trained_on)
        told = [str(w.message) for w in said if issubclass(w.category, GADWarning)]
        assert told == ([] if not seen else [told[0]]), told
        if seen:
            assert told[0].startswith(f"3 of this run's {len(data.test.paths)} test images are images the checkpoint")
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    torch.save({"model_state_dict": model.state_dict()}, tmp_path / "training.pt")
    assert checked(tmp_path / "plain.pt") is None and checked(tmp_path / "training.pt") is None


def test_users_checkpoint_is_loaded_and_a_wrong_one_is_named(tmp_path):
    from gadlib.models import load_classifier

    model = build_model("resnet18", 2, 32)
    torch.save(model.state_dict(), tmp_path / "mine.pt")
    loaded = load_classifier(tmp_path / "mine.pt", "resnet18", 32)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    torch.save(build_model("resnet18", 5, 32).state_dict(), tmp_path / "five.pt")
    one_line_error("does not fit a two-class resnet18", load_classifier, tmp_path / "five.pt", "resnet18", 32)
    one_line_error("does not exist", load_classifier, tmp_path / "missing.pt", "resnet18", 32)
    one_line_error("is a folder", load_classifier, tmp_path, "resnet18", 32)
    # a whole model of another class count: what to use instead is named
    torch.save(build_model("resnet18", 3, 32), tmp_path / "three.pt")
    one_line_error(
        "3 outputs.*use the GAD class in Python, with pair", load_classifier, tmp_path / "three.pt", "resnet18", 32
    )
    # what differs is named: torch's first line only names the model's class
    one_line_error(r"size mismatch for fc\.weight", load_classifier, tmp_path / "five.pt", "resnet18", 32)
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "wrapped.pt")
    one_line_error("keys start with 'module.'", load_classifier, tmp_path / "wrapped.pt", "resnet18", 32)
    # VGG16's own 224 px head at a smaller size: the cause is build_model's small head (an
    # expanded tensor, so that the file holds one number, not 100 million)
    head = {"classifier.0.weight": torch.zeros(1).expand(4096, 25088), "classifier.6.weight": torch.zeros(2, 4096)}
    torch.save(head, tmp_path / "vgg224.pt")
    one_line_error("224 px head.*set image_size=224", load_classifier, tmp_path / "vgg224.pt", "vgg16", 32)
    # a training checkpoint (the PyTorch tutorials' form): the weights under model_state_dict
    torch.save({"model_state_dict": model.state_dict(), "epoch": 3}, tmp_path / "training.pt")
    loaded = load_classifier(tmp_path / "training.pt", "resnet18", 32)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "scripted.pt")
    with warnings.catch_warnings(record=True) as said:  # torch's notes on loading it: the one line says it
        warnings.simplefilter("always")
        one_line_error("is TorchScript", load_classifier, tmp_path / "scripted.pt", "resnet18", 32)
    assert said == []
    # a whole model whose class is not importable where it is loaded
    (tmp_path / "mymodels.py").write_text("import torch\nclass Net(torch.nn.Linear):\n    pass\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import mymodels

        torch.save(mymodels.Net(2, 2), tmp_path / "whole_net.pt")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("mymodels", None)
    one_line_error(
        "whole model whose class cannot be imported here", load_classifier, tmp_path / "whole_net.pt", "resnet18", 32
    )
    # ImageNet's 1000 classes: not this hint, at 224 px it would fail too
    torch.save({**head, "classifier.6.weight": torch.zeros(1).expand(1000, 4096)}, tmp_path / "vgg1000.pt")
    one_line_error("with a two-class head", load_classifier, tmp_path / "vgg1000.pt", "vgg16", 32)
    # the architecture's own keys with another class count: pair= is the way; another
    # architecture's keys (ResNet50's 2048-wide head loaded as resnet18): pick its architecture
    one_line_error("5-class head.*with pair=", load_classifier, tmp_path / "five.pt", "resnet18", 32)
    torch.save(
        {**model.state_dict(), "fc.weight": torch.zeros(1000, 2048), "extra.weight": torch.zeros(1)},
        tmp_path / "r50.pt",
    )
    one_line_error("pick its architecture", load_classifier, tmp_path / "r50.pt", "resnet18", 32)
    # a whole model saved in half precision runs in fp32, as the pipeline computes
    torch.save(build_model("resnet18", 2, 32).half(), tmp_path / "half.pt")
    half = load_classifier(tmp_path / "half.pt", "resnet18", 32)
    assert {p.dtype for p in half.parameters()} == {torch.float32}
    # a whole model that cannot take the run's image size
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 2)), tmp_path / "lin16.pt")
    one_line_error("fails on a 3 x 32 x 32 image", load_classifier, tmp_path / "lin16.pt", "resnet18", 32)
    assert load_classifier(tmp_path / "lin16.pt", "resnet18", 16)(torch.zeros(1, 3, 16, 16)).shape == (1, 2)
    torch.save(_Fails16(), tmp_path / "asserts.pt")  # fails with an error that has no message
    one_line_error(
        r"fails on a 3 x 32 x 32 image \(RuntimeError: \)", load_classifier, tmp_path / "asserts.pt", "resnet18", 32
    )
    # outputs that are no (N, 2) logits are named as such, not blamed on the image size
    torch.save(_Tuple(), tmp_path / "tuple.pt")
    one_line_error(
        "forward returns a tuple, not a tensor of logits", load_classifier, tmp_path / "tuple.pt", "vgg16", 32
    )
    torch.save(_Squeezed(), tmp_path / "squeezed.pt")
    one_line_error(r"shape \(2,\) for one image.*a squeeze", load_classifier, tmp_path / "squeezed.pt", "vgg16", 32)
    torch.save(torch.nn.Conv2d(3, 2, 3), tmp_path / "maps.pt")
    one_line_error(
        r"outputs of shape \(1, 2, 30, 30\) for one image", load_classifier, tmp_path / "maps.pt", "vgg16", 32
    )
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 1)), tmp_path / "one.pt")
    one_line_error(
        r"one output.*torch.cat\(\[torch.zeros_like\(z\), z\], 1\)",
        load_classifier,
        tmp_path / "one.pt",
        "resnet18",
        32,
    )


class _Squeezed(torch.nn.Module):  # (N, 2), but (2,) for one image
    def forward(self, x):
        return x.flatten(1)[:, :2].squeeze()


class _Tuple(torch.nn.Module):  # logits and features, as some training code returns them
    def forward(self, x):
        return x.flatten(1)[:, :2], x


class _Fails16(torch.nn.Module):
    def forward(self, x):
        if x.shape[-1] != 16:
            raise RuntimeError  # no message, as a bare assert gives outside pytest
        return x.flatten(1)[:, :2]


def test_16_bit_greyscale_images_keep_their_levels(tmp_path):
    import numpy as np
    from PIL import Image

    from gadlib.data import decode_images

    Image.fromarray(np.full((12, 12), 30000, np.uint16)).save(tmp_path / "g16.png")
    Image.fromarray(np.full((12, 12), 117, np.uint8)).save(tmp_path / "g8.png")
    x, kept = decode_images([tmp_path / "g16.png", tmp_path / "g8.png"], 8)
    assert kept == [0, 1] and (x == 117).all()  # 30000 / 65535 of full scale, as the 8-bit image's 117 / 255


def _images(folder, n, size=8):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        Image.new("RGB", (size, size), (10 * k, 0, 0)).save(folder / f"{k}.png")


def test_hidden_files_beside_the_images_are_not_taken_for_images(tmp_path):
    """A Mac copies ._photo.jpg (metadata, not an image) beside each photo, and .DS_Store: they are
    neither counted, drawn, decoded nor listed as skipped; a hidden sub-folder is not a nested one."""
    from gadlib.layouts import image_files

    for c in ("cats", "dogs"):
        _images(tmp_path / c, 6)
        for k in range(6):
            (tmp_path / c / f"._{k}.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
        (tmp_path / c / ".DS_Store").write_bytes(b"\x00")
        _images(tmp_path / c / ".ipynb_checkpoints", 1)
    cfg = RunConfig.build(profile="smoke", dataset="folder", data_dir=str(tmp_path), n_eval=2, image_size=8)
    _, files, _ = image_files(cfg)
    assert [sorted(p.name for p in fs) for fs in files] == [[f"{k}.png" for k in range(6)]] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "unreadable" or "sub-folders" notice
        data = load_dataset(dataclasses.replace(cfg, runs_dir=str(tmp_path / "runs")))
    assert data.skipped == 0 and len(data.train.labels) + len(data.test.labels) == 12


def test_a_class_folder_behind_a_broken_link_is_named_not_left_out(tmp_path):
    for c in ("birds", "cats"):
        _images(tmp_path / c, 4)
    (tmp_path / "dogs").symlink_to(tmp_path / "unmounted" / "dogs")
    cfg = RunConfig.build(profile="smoke", dataset="folder", data_dir=str(tmp_path), runs_dir=str(tmp_path / "runs"))
    one_line_error(r"holds 1 link\(s\) that lead nowhere \(dogs\): mount or restore", load_dataset, cfg)
    (tmp_path / "dogs").unlink()
    (tmp_path / "dogs").symlink_to(tmp_path / "dogs")  # a link to itself
    one_line_error(r"lead nowhere \(dogs\)", load_dataset, cfg)
    assert not (tmp_path / "runs").exists()
    # classes named: the missing one is said as such; a dead link that is a file's is no class
    (tmp_path / "dogs").unlink()
    (tmp_path / "README.md").symlink_to(tmp_path / "gone.md")
    named = dataclasses.replace(cfg, classes=["birds", "dogs"])
    one_line_error(
        r"class folder .*dogs does not exist: name two of the folders in .* \(birds, cats\)", load_dataset, named
    )
    # an image behind a dead link is not left out unseen: decoding skips it and lists it
    (tmp_path / "cats" / "9.png").symlink_to(tmp_path / "gone.png")
    with pytest.warns(UserWarning, match="unreadable"):
        data = load_dataset(dataclasses.replace(cfg, n_eval=2, image_size=8))
    assert data.skipped == 1 and data.skipped_by_class == (0, 1)
    assert "9.png" in (tmp_path / "runs" / cfg.name / "skipped_images.txt").read_text()


def test_a_folder_that_cannot_be_listed_is_one_line(tmp_path, monkeypatch):
    from pathlib import Path

    for c in ("cats", "dogs"):
        _images(tmp_path / c, 4)
    listing = Path.iterdir

    def refuse(self):
        if self.name == "dogs":
            raise PermissionError(13, "Permission denied", str(self))
        return listing(self)

    monkeypatch.setattr(Path, "iterdir", refuse)
    cfg = RunConfig.build(profile="smoke", dataset="folder", data_dir=str(tmp_path), runs_dir=str(tmp_path / "runs"))
    one_line_error(r"folder .*dogs cannot be read \(Permission denied\): check its permissions", load_dataset, cfg)


def test_a_data_folder_one_level_too_low_says_where_to_point(tmp_path):
    _images(tmp_path / "pets" / "cats", 4)
    _images(tmp_path / "pets" / "dogs", 4)
    cfg = RunConfig.build(profile="smoke", dataset="folder", data_dir=str(tmp_path / "pets" / "cats"))
    one_line_error(r"holds 4 image\(s\) itself: if it is one class, point data_dir at .*pets$", load_dataset, cfg)


def test_the_advice_to_raise_the_cap_counts_each_class_own_unreadable_files():
    from gadlib.layouts import check_counts

    test, total = {"cats": 3, "dogs": 12}, {"cats": 10, "dogs": 40}
    # 40 of dogs' files were unreadable: cats had all its 10 files, so only more images help it
    one_line_error(r"or add images$", check_counts, test, total, 8, 48, {"cats": 0, "dogs": 40})
    one_line_error(r"raise images_per_class \(now 48\)", check_counts, test, total, 8, 48, {"cats": 38, "dogs": 2})
    skipped = {"cats": 0, "dogs": 40}
    one_line_error(r"after 40 unreadable file\(s\) were skipped", check_counts, test, total, 8, 48, skipped)
    # from a dataset as notebook 01 leaves it: its own class's skips, or all where a cache predates them
    from gadlib.data import Dataset, Split, check_n_eval

    def split(per_class):
        labels = torch.tensor([k for k, n in enumerate(per_class) for _ in range(n)])
        return Split(torch.zeros(len(labels), 3, 2, 2, dtype=torch.uint8), labels, None, None, None)

    data = Dataset(split([7, 28]), split([3, 12]), ["cats", "dogs"], 40, (), (0, 40))
    one_line_error(r"\(of 'cats' 10, 'dogs' 40 images in all, after 40 .*or add images$", check_n_eval, data, 8, 48)
    before = Dataset(split([7, 28]), split([3, 12]), ["cats", "dogs"], 40, ())
    one_line_error(r"raise images_per_class \(now 48\)", check_n_eval, before, 8, 48)


def test_names_on_the_command_line_are_read_as_typed():
    """-p data_dir=2024, classes=[010, 020]: folder names, spelt as typed (a number would turn 010
    into 8, 1_000 into 1000); None stays unset; a number given in Python is a path too, and
    classes as numbers are refused with the fix."""
    import os

    from gadlib.config import parse_value

    assert parse_value("data_dir=2024") == "2024" and parse_value("checkpoint=0x1F") == "0x1F"
    assert parse_value("run_name=1_000") == "1_000" and parse_value("classes=[010, 020]") == ["010", "020"]
    assert parse_value("classes=['cats', \"a b\"]") == ["cats", "a b"] and parse_value("classes=None") is None
    assert parse_value("data_dir=[a, 2024]") == ["a", "2024"]  # a sweep's grid of paths
    assert parse_value("seed=3") == 3  # other settings as before
    cfg = RunConfig.build(profile="smoke", dataset="folder", data_dir=2024, checkpoint=7)
    assert cfg.data_dir == os.path.abspath("2024") and cfg.checkpoint == os.path.abspath("7")
    one_line_error(r"data_dir must be a path, got \['a'\]", RunConfig.build, dataset="folder", data_dir=["a"])
    one_line_error(
        r"two classes as text \(e\.g\. \['0', '1'\]\)", RunConfig.build, dataset="folder", data_dir="x", classes=[0, 1]
    )


def test_a_wrong_class_folder_lists_the_folders_there(tmp_path):
    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
    cfg = RunConfig.build(
        profile="smoke", dataset="folder", data_dir=str(tmp_path), classes=["cats", "dgs"], runs_dir=str(tmp_path)
    )
    one_line_error(
        r"class folder .*dgs does not exist: name two of the folders in .* \(cats, dogs\)", load_dataset, cfg
    )


def test_pretrained_weights_come_from_the_local_cache_or_a_clear_message(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    one_line_error("not in the local torch cache", build_model, "resnet18", 2, 32, pretrained=True)
    imagenet = torchvision.models.resnet18()
    (tmp_path / "checkpoints").mkdir()
    name = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    torch.save(imagenet.state_dict(), tmp_path / "checkpoints" / name)
    model = build_model("resnet18", 2, 32, pretrained=True)
    assert model.fc.out_features == 2
    assert torch.equal(model.conv1.weight, imagenet.conv1.weight)
