"""Real-image loaders on tiny fake folders in the layouts users have: class folders, Kaggle
Dogs vs. Cats, CUB-200-2011; with a corrupt JPEG, an RGBA PNG, a greyscale and a CMYK image."""

import warnings

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


def test_decoded_images_are_cached_and_reused(tmp_path, kaggle):
    cfg = _cfg(tmp_path, "kaggle", kaggle)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = load_dataset(cfg)
    for p in kaggle.rglob("*.jpg"):
        p.unlink()  # a cached dataset never decodes again
    again = load_dataset(cfg)
    assert torch.equal(first.train.images, again.train.images)


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
