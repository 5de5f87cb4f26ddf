"""Real-image loaders on tiny fake folders in the layouts users have: class folders, Kaggle
Dogs vs. Cats, CUB-200-2011; with a corrupt JPEG, an RGBA PNG, a greyscale and a CMYK image."""

import dataclasses
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from gadlib import GADInputError, RunConfig
from gadlib.data import load_dataset
from gadlib.errors import GADWarning


def _image(path, mode="RGB", size=(40, 30)):
    colour = {"RGB": (200, 10, 10), "RGBA": (10, 200, 10, 128), "L": 90, "CMYK": (0, 255, 255, 0)}[mode]
    Image.new(mode, size, colour).save(path)


def _cfg(tmp_path, dataset, root, **kw):
    return RunConfig.build(
        profile="smoke", dataset=dataset, data_dir=str(root), runs_dir=str(tmp_path / "runs"), n_eval=2, **kw
    )


@pytest.fixture
def kaggle(tmp_path):
    train = tmp_path / "kaggle" / "train"
    train.mkdir(parents=True)
    for i in range(5):
        _image(train / f"cat.{i}.jpg", "L" if i == 1 else "RGB")
        _image(train / f"dog.{i}.jpg", "CMYK" if i == 2 else "RGB")
    _image(train / "dog.9.png", "RGBA")
    (train / "cat.7.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    return tmp_path / "kaggle"


def test_kaggle_layout_with_odd_and_corrupt_files(tmp_path, kaggle):
    cfg = _cfg(tmp_path, "kaggle", kaggle)
    with pytest.warns(GADWarning, match="1 unreadable image file") as caught:
        data = load_dataset(cfg)
    listed = (cfg.run_dir / "skipped_images.txt").read_text()
    ours = [str(w.message) for w in caught if issubclass(w.category, GADWarning)]
    assert len(ours) == 1 and ours[0].endswith(f"the list is in {cfg.run_dir / 'skipped_images.txt'}")
    assert listed.startswith(str(kaggle / "train" / "cat.7.jpg") + ": ") and listed.count("\n") == 1
    assert data.skipped == 1
    assert data.classes == ["cat", "dog"]
    assert len(data.train) + len(data.test) == 5 + 6  # 6 cats minus the corrupt one, 6 dogs
    assert data.train.images.dtype == torch.uint8 and data.train.images.shape[1:] == (3, 32, 32)
    # greyscale becomes three equal channels
    grey = [i for i, p in enumerate(data.train.paths + data.test.paths) if p.endswith("cat.1.jpg")][0]
    imgs = torch.cat([data.train.images, data.test.images])
    assert torch.equal(imgs[grey, 0], imgs[grey, 1])


def test_decoded_images_are_reused_until_an_image_file_changes(tmp_path, kaggle, monkeypatch):
    from gadlib import data as data_module
    from gadlib.runfiles import split_fingerprint

    cfg = _cfg(tmp_path, "kaggle", kaggle)
    decoded = []
    real_decode = data_module.decode_images
    monkeypatch.setattr(
        data_module, "decode_images", lambda paths, *a, **k: decoded.extend(paths) or real_decode(paths, *a, **k)
    )
    from gadlib import layouts

    listed = []  # the folder is listed once per load, for the key and the decoding alike
    real_list = layouts.kaggle_files
    monkeypatch.setattr(layouts, "kaggle_files", lambda *a: listed.append(a) or real_list(*a))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = load_dataset(cfg)
        assert decoded and len(listed) == 1
        decoded.clear()
        again = load_dataset(cfg)  # the same files: read back, nothing decoded
        assert not decoded and torch.equal(first.train.images, again.train.images)
        # one image replaced at the same path (another colour and size): decoded again, and the
        # split that models are keyed by is another one
        replaced = next(p for p in first.train.paths if p.endswith(".jpg") and "cat." in p)
        Image.new("RGB", (50, 30), (10, 10, 240)).save(replaced)
        fresh = load_dataset(cfg)
        assert decoded and not torch.equal(fresh.train.images, first.train.images)
        assert split_fingerprint(fresh.train) != split_fingerprint(first.train)
        # one removed: decoded again, without it
        decoded.clear()
        Path(replaced).unlink()
        fewer = load_dataset(cfg)
        assert decoded and replaced not in fewer.train.paths + fewer.test.paths


def _cub(root, drop=None):
    species = ["001.Bay_breasted_Warbler", "002.Baird_Sparrow", "003.American_Crow"]
    rows_images, rows_labels, rows_split = [], [], []
    iid = 0
    for sid, name in enumerate(species, 1):
        (root / "images" / name).mkdir(parents=True)
        for j in range(4):
            iid += 1
            rel = f"{name}/{name}_{j}.jpg"
            _image(root / "images" / rel)
            rows_images.append(f"{iid} {rel}")
            rows_labels.append(f"{iid} {sid}")
            rows_split.append(f"{iid} {1 if j < 2 else 0}")
    files = {
        "images.txt": rows_images,
        "image_class_labels.txt": rows_labels,
        "classes.txt": [f"{i} {n}" for i, n in enumerate(species, 1)],
        "train_test_split.txt": rows_split,
    }
    for name, rows in files.items():
        if name != drop:
            (root / name).write_text("\n".join(rows) + "\n")
    return root


def test_cub_groups_species_and_uses_the_official_split(tmp_path):
    root = _cub(tmp_path / "CUB_200_2011")
    data = load_dataset(_cfg(tmp_path, "cub", root))
    assert data.classes == ["warbler", "sparrow"]
    assert len(data.train) == 4 and len(data.test) == 4  # the crow is in neither group
    assert all("_0.jpg" in p or "_1.jpg" in p for p in data.train.paths)


def test_a_cub_image_listed_but_missing_is_skipped_and_listed(tmp_path):
    root = _cub(tmp_path / "CUB_200_2011")
    (root / "images" / "001.Bay_breasted_Warbler" / "001.Bay_breasted_Warbler_3.jpg").unlink()
    with pytest.warns(GADWarning, match="1 unreadable image file"):
        data = load_dataset(_cfg(tmp_path, "cub", root))
    assert data.skipped == 1 and len(data.test) == 3


def test_cub_missing_metadata_names_the_file(tmp_path):
    root = _cub(tmp_path / "CUB_200_2011", drop="train_test_split.txt")
    with pytest.raises(GADInputError, match="train_test_split.txt is missing") as err:
        load_dataset(_cfg(tmp_path, "cub", root))
    assert "\n" not in str(err.value)


def test_too_few_images_for_the_evaluation(tmp_path):
    for c in ("a", "b"):
        (tmp_path / "f" / c).mkdir(parents=True)
        for i in range(3):
            _image(tmp_path / "f" / c / f"{i}.jpg")
    with pytest.raises(GADInputError, match="lower n_eval"):
        load_dataset(
            RunConfig.build(
                profile="smoke",
                dataset="folder",
                data_dir=str(tmp_path / "f"),
                runs_dir=str(tmp_path / "runs"),
                n_eval=8,
            )
        )


def test_images_per_class_draws_the_same_files_for_the_check_and_the_load(tmp_path, kaggle):
    """The cap is a seeded draw made before the split: preflight counts what loading decodes,
    every class keeps at most the cap, and CUB keeps its official split's train share."""
    from gadlib.layouts import check_image_files, image_files

    cfg = _cfg(tmp_path, "kaggle", kaggle, images_per_class=4)
    classes, files, _ = image_files(cfg)
    assert [len(fs) for fs in files] == [4, 4] and all(fs == sorted(fs) for fs in files)
    assert image_files(cfg)[1] == files  # seeded: the same draw every time
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_dataset(cfg)
    decoded = sorted(data.train.paths + data.test.paths)
    drawn = sorted(str(p) for fs in files for p in fs)
    assert set(decoded) <= set(drawn) and len(drawn) - len(decoded) <= 1  # the corrupt cat, if drawn
    assert (
        image_files(_cfg(tmp_path, "kaggle", kaggle, images_per_class=5, seed=1))[1]
        != image_files(_cfg(tmp_path, "kaggle", kaggle, images_per_class=5))[1]
    )
    assert [len(fs) for fs in image_files(_cfg(tmp_path, "kaggle", kaggle, images_per_class=None))[1]] == [6, 6]
    # 4 of each class hold out 1: the check before decoding counts the draw, not the folder
    few = RunConfig.build(profile="smoke", dataset="kaggle", data_dir=str(kaggle), images_per_class=4, n_eval=4)
    with pytest.raises(
        GADInputError, match=r"n_eval=4 needs 2 held-out test images per class.*raise images_per_class \(now 4\)"
    ):
        check_image_files(few)
    check_image_files(dataclasses.replace(few, images_per_class=None))
    # a cap above what the folder holds is not what limits: the fix is more images
    with pytest.raises(GADInputError, match=r"held-out test images per class.*or add images$"):
        check_image_files(dataclasses.replace(few, images_per_class=48, n_eval=8))

    root = _cub(tmp_path / "CUB_200_2011")  # per class: 2 species x (2 train + 2 test)
    classes, parts, _ = image_files(_cfg(tmp_path, "cub", root, images_per_class=4))
    assert [(len(tr), len(te)) for tr, te in parts] == [(2, 2), (2, 2)]
    classes, parts, _ = image_files(_cfg(tmp_path, "cub", root, images_per_class=2))
    assert [(len(tr), len(te)) for tr, te in parts] == [(1, 1), (1, 1)]
    with pytest.raises(GADInputError, match="images_per_class must be a whole number >= 2"):
        _cfg(tmp_path, "kaggle", kaggle, images_per_class=1)


def test_a_short_test_split_says_how_many_files_were_unreadable():
    from gadlib.layouts import check_counts

    with pytest.raises(GADInputError, match=r"in all, after 4 unreadable file\(s\) were skipped\): .* or add images$"):
        check_counts({"cat": 1, "dog": 3}, {"cat": 3, "dog": 7}, n_eval=4, cap=48, unreadable=4)
    check_counts({"cat": 2, "dog": 3}, {"cat": 5, "dog": 7}, n_eval=4, cap=48, unreadable=4)  # enough: no error


def test_deep_and_float_greyscale_images_keep_their_brightness(tmp_path):
    """PIL's own conversion clips 16-bit values at 255 (white) and float ones in [0, 1] to 0
    or 1 (black): both are scaled to 8 bits first."""
    import numpy as np

    from gadlib.data import decode_images

    Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)).save(tmp_path / "deep.png")
    Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32)).save(tmp_path / "float.tif")
    images, kept = decode_images([tmp_path / "deep.png", tmp_path / "float.tif"], 8)
    assert kept == [0, 1]
    assert images[0].unique().tolist() == [round(40000 * 255 / 65535)] and images[1].unique().tolist() == [128]


@pytest.fixture
def three_classes(tmp_path):
    """root/<class>/ with three classes of one colour each, a corrupt file among the birds."""
    root = tmp_path / "mine"
    for k, (name, colour) in enumerate((("birds", (200, 0, 0)), ("cats", (0, 200, 0)), ("dogs", (0, 0, 200)))):
        (root / name).mkdir(parents=True)
        for i in range(2 + k):
            Image.new("RGB", (40, 30), colour).save(root / name / f"{i}.png")
    (root / "birds" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (root / ".ipynb_checkpoints").mkdir()  # not a class
    return root


def test_folder_images_give_your_model_its_class_indices_and_the_pipelines_pixels(three_classes):
    """GAD on your own model: every class folder, labelled by position or by the model's own
    index, decoded as the pipeline decodes, the corrupt file skipped with a warning."""
    from gadlib.data import decode_images, folder_images

    with pytest.warns(UserWarning, match="1 unreadable image.* of class 'birds' skipped, the first .*broken.jpg"):
        got = folder_images(three_classes, size=16)
    assert got.classes == ["birds", "cats", "dogs"] and got.labels.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 2]
    assert got.images.shape == (9, 3, 16, 16) and got.images.dtype == torch.uint8
    assert torch.equal(got.images[2], decode_images([Path(got.paths[2])], 16)[0][0])  # a cat, as the pipeline has it
    assert got.images[-1, 2].float().mean() > 150 and got.images[-1, :2].float().mean() < 50  # a blue dog
    mine = folder_images(three_classes, size=16, classes={"dogs": 254, "cats": 281})  # an ImageNet model's
    assert mine.classes == ["dogs", "cats"] and mine.labels.tolist() == [254] * 4 + [281] * 3
    pets = folder_images(three_classes, size=16, classes={"dogs": 1, "cats": 1})  # two folders of one class
    assert pets.labels.tolist() == [1] * 7
    drawn = folder_images(three_classes, size=16, classes=["dogs"], per_class=2, seed=3)
    assert len(drawn.paths) == 2 and drawn.paths == folder_images(three_classes, 16, ["dogs"], 2, seed=3).paths


def test_folder_images_feed_gad_fit_and_explain(three_classes):
    from captum.attr import Saliency

    from gadlib import GAD
    from gadlib.data import folder_images, normalize
    from gadlib.models import small_cnn

    with pytest.warns(UserWarning):
        data = folder_images(three_classes, size=16)
    torch.manual_seed(0)
    gad = GAD(small_cnn(3), Saliency, alphas=[2]).fit(data.images, data.labels, epochs=1)
    assert gad.attribute(normalize(data.images[:2]), data.labels[:2]).shape == (2, 16, 16)


@pytest.mark.parametrize(
    "where, kwargs, message",
    [
        ("nowhere", {}, "data folder .*nowhere does not exist or is not a folder: point folder_images' root at it"),
        ("empty", {}, "data folder .*empty holds no class folder: put each class's images in root/<class>/"),
        ("mine", {"classes": ["cats", "horses"]}, "class folder .*horses does not exist: name some of the folders"),
        ("mine", {"classes": "cats"}, "classes='cats': give a list of class folders"),
        ("mine", {"classes": []}, "classes=\\[\\]: give a list of class folders"),
        ("mine", {"classes": ["cats", "cats"]}, "names a folder twice: give each once"),
        ("mine", {"classes": {"cats": -1}}, "class 'cats' maps to -1: give each folder a class index >= 0"),
        ("mine", {"size": 0}, "size must be a whole number >= 1, got 0"),
        ("mine", {"per_class": 1.5}, "per_class must be a whole number >= 1, got 1.5"),
        ("mine", {"classes": ["none"]}, "class 'none' has no images in"),
        (None, {}, "folder_images' root is None: give the folder of class folders"),
        ("mine", {"classes": ["broken"]}, "no readable images in .*broken \\(1 unreadable, the first"),
    ],
)
def test_folder_images_answer_bad_input_in_one_line(three_classes, where, kwargs, message):
    from gadlib.data import folder_images

    (three_classes.parent / "empty").mkdir()
    (three_classes / "none").mkdir()
    (three_classes / "broken").mkdir()
    (three_classes / "broken" / "0.jpg").write_bytes(b"not an image")
    with pytest.raises(GADInputError, match=message) as err:
        folder_images(None if where is None else three_classes.parent / where, **kwargs)
    assert "\n" not in str(err.value)


def test_a_class_folder_names_the_files_it_holds_instead_of_images(tmp_path):
    """Images in a format not read (.heic) are named, not taken for an empty folder; JPEGs named
    .jfif are read."""
    from gadlib.data import folder_images

    for name in ("cats", "dogs"):
        (tmp_path / "pets" / name).mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (20, 20), (200, 0, 0)).save(tmp_path / "pets" / "cats" / f"{i}.jfif", format="JPEG")
        (tmp_path / "pets" / "dogs" / f"{i}.heic").write_bytes(b"heic")
    (tmp_path / "pets" / "dogs" / "notes").write_text("")
    with pytest.raises(
        GADInputError, match=r"class 'dogs' has no images in .*dogs; it holds 3 \.heic file\(s\), 1 no suffix"
    ):
        folder_images(tmp_path / "pets", size=8)
    assert len(folder_images(tmp_path / "pets", size=8, classes=["cats"]).paths) == 3


def test_a_data_folder_one_level_too_high_points_at_the_folder_below(tmp_path):
    """A folder of two datasets (../shared/data itself) is not two classes with their images in
    sub-folders: moving them, as the general advice says, would merge each dataset's classes."""
    from gadlib.data import folder_images

    for pack in ("catsdogs", "birds"):
        for name in ("a", "b"):
            (tmp_path / pack / name).mkdir(parents=True)
            Image.new("RGB", (20, 20)).save(tmp_path / pack / name / "0.png")
    with pytest.raises(
        GADInputError,
        match=r"holds folders of images itself \(a, b\); if those are the classes, point data_dir at .*birds",
    ):
        folder_images(tmp_path, size=8)


def test_images_decoded_on_threads_are_those_decoded_one_at_a_time(tmp_path, monkeypatch):
    """decode_images' thread pool keeps the files' order, the images and the unreadable ones."""
    from gadlib import data

    paths = []
    for i in range(9):
        p = tmp_path / f"{i}.png"
        if i in (2, 7):
            p.write_bytes(b"not an image")
        else:
            Image.new("RGB", (30 + i, 20), (20 * i, 255 - 20 * i, 7 * i)).save(p)
        paths.append(p)
    got = {}
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)  # four threads, also on a one-core machine
    for threads in (1, 4):
        monkeypatch.setattr(data, "DECODE_THREADS", threads)
        failures = []
        images, kept = data.decode_images(paths, 16, failures=failures)
        got[threads] = (images, kept, [f.split(":")[0] for f in failures])
    assert got[4][1] == got[1][1] == [0, 1, 3, 4, 5, 6, 8]
    assert got[4][2] == got[1][2] == [str(paths[2]), str(paths[7])]
    assert torch.equal(got[4][0], got[1][0]) and got[1][0][6].float().mean() != got[1][0][0].float().mean()
