"""Datasets: the embedded synthetic set and real images in the layouts users have on disk.

Every dataset becomes the same thing: uint8 image tensors (N, 3, S, S), integer labels, class
names, and (synthetic only) ground-truth object masks, split into train and test. JPEGs are
decoded and resized once; the result is cached in the run folder so that training epochs and
later notebooks never decode again.

The train/test split depends only on the data and the seed, never on how many images are
evaluated, so a model trained in one run can never see an image that a later run with a larger
`n_eval` evaluates; evaluation images are always drawn from the test split.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms import functional as TF
from tqdm.auto import tqdm

from . import notices, runfiles
from .config import RunConfig
from .errors import GADInputError
from .synthetic import CLASS_NAMES, make_synthetic

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@dataclass
class Split:
    images: torch.Tensor  # uint8 (N, 3, S, S)
    labels: torch.Tensor  # int64 (N,)
    masks: torch.Tensor | None = None  # bool (N, S, S): ground-truth object, synthetic only
    paths: list[str] | None = None
    groups: torch.Tensor | None = None  # int64 (N,): sub-class (CUB species), None if there is none

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: torch.Tensor) -> "Split":
        return Split(
            self.images[idx],
            self.labels[idx],
            None if self.masks is None else self.masks[idx],
            None if self.paths is None else [self.paths[i] for i in idx.tolist()],
            None if self.groups is None else self.groups[idx],
        )


@dataclass
class Dataset:
    train: Split
    test: Split
    classes: list[str]
    skipped: int = 0  # unreadable files left out
    skipped_files: tuple[str, ...] = ()  # "path: why" for each of them


def normalize(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float, ImageNet-normalised model input (the space occlusion fills in)."""
    x = images_uint8.float() / 255.0
    return (x - IMAGENET_MEAN.to(x.device)) / IMAGENET_STD.to(x.device)


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """Model input -> displayable [0, 1] images."""
    return (x * IMAGENET_STD.to(x.device) + IMAGENET_MEAN.to(x.device)).clamp(0, 1)


# ---------------------------------------------------------------- synthetic
def synthetic_dataset(cfg: RunConfig) -> Dataset:
    def split(n, seed):
        img, labels, masks = make_synthetic(n, cfg.image_size, seed)
        return Split((img * 255).round().to(torch.uint8), labels, masks)

    return Dataset(split(cfg.n_train, 2 * cfg.seed), split(cfg.n_test, 2 * cfg.seed + 1), list(CLASS_NAMES))


# ---------------------------------------------------------------- real images
def decode_images(paths: list[Path], size: int, desc: str = "decode",
                  failures: list[str] | None = None) -> tuple[torch.Tensor, list[int]]:
    """Decode, convert to RGB (greyscale, CMYK, RGBA, palette PNG ...), resize the short side to
    `size` and centre-crop. Unreadable files are skipped: listed as "path: why" in `failures`,
    or else each with a warning. Returns the images and the indices of the paths kept."""
    out, kept = [], []
    for i, p in enumerate(tqdm(paths, desc=desc, leave=False)):
        try:
            with Image.open(p) as im:
                im = im.convert("RGB")
                im = TF.center_crop(TF.resize(im, size, antialias=True), size)
                out.append(TF.pil_to_tensor(im))
                kept.append(i)
        except (OSError, UnidentifiedImageError, ValueError) as err:
            if failures is None:
                warnings.warn(f"skipped unreadable image {p}: {err}", stacklevel=2)
            else:
                failures.append(f"{p}: {err}")
    if not out:
        return torch.empty(0, 3, size, size, dtype=torch.uint8), kept
    return torch.stack(out), kept


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise GADInputError(f"{what} {path} does not exist or is not a folder: point data_dir at it")
    return path


def folder_files(root: Path, classes: list[str] | None) -> tuple[list[str], list[list[Path]]]:
    """root/<class>/*.jpg: class names are the sub-folder names (sorted) unless given."""
    _require_dir(root, "data folder")
    if classes is None:
        classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if len(classes) != 2:
        raise GADInputError(f"data folder {root} must hold exactly two class folders (or pass classes=[a, b]), found {classes}")
    files = []
    for c in classes:
        files.append(_image_files(_require_dir(root / c, "class folder")))
    return classes, files


def kaggle_files(root: Path, classes: list[str] | None) -> tuple[list[str], list[list[Path]]]:
    """Kaggle Dogs vs. Cats: flat `cat.123.jpg`, `dog.456.jpg` (in root or root/train)."""
    _require_dir(root, "Kaggle folder")
    if (root / "train").is_dir():
        root = root / "train"
    classes = classes or ["cat", "dog"]
    files = _image_files(root)
    return classes, [[p for p in files if p.name.split(".")[0].lower() == c.lower()] for c in classes]


CUB_FILES = ("images.txt", "image_class_labels.txt", "classes.txt", "train_test_split.txt")


def _read_table(path: Path) -> dict[int, str]:
    if not path.is_file():
        raise GADInputError(f"CUB metadata file {path} is missing: data_dir must be the CUB_200_2011 release folder")
    rows = (line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())
    return {int(k): v.strip() for k, v in rows}


def cub_files(root: Path, classes: list[str] | None):
    """CUB-200-2011 release folder; species grouped by name pattern (paper: Warbler vs Sparrow).

    Returns class names and, per class, (train paths, test paths) from the official split, and
    the species id of every path."""
    _require_dir(root, "CUB folder")
    images, labels, species, is_train = (_read_table(root / f) for f in CUB_FILES)
    patterns = classes or ["Warbler", "Sparrow"]
    group = {}
    for sid, name in species.items():
        hits = [k for k, pat in enumerate(patterns) if re.search(pat, name)]
        if len(hits) == 1:
            group[sid] = hits[0]
    per_class = [([], []) for _ in patterns]
    species_of = {}
    for iid, rel in images.items():
        g = group.get(int(labels[iid]))
        if g is not None:
            path = root / "images" / rel
            per_class[g][0 if is_train[iid] == "1" else 1].append(path)
            species_of[path] = int(labels[iid])
    return [p.strip("_").lower() for p in patterns], per_class, species_of


TEST_FRACTION = 0.3  # folder and Kaggle data: the seeded share of each class held out


def held_out(n: int) -> int:
    """How many of a class's n images the folder and Kaggle split holds out."""
    return round(TEST_FRACTION * n)


def image_files(cfg: RunConfig):
    """(class names, per class the files, species of each path) of a real dataset, checked
    before anything is decoded: folder and Kaggle give one list of paths per class, CUB a
    (train, test) pair. Every error is one line naming the folder and what to do."""
    root = Path(cfg.data_dir).expanduser()
    if cfg.dataset == "cub":
        classes, parts, species_of = cub_files(root, cfg.classes)
        for c, (tr, te) in zip(classes, parts):
            if not tr and not te:
                raise GADInputError(f"class {c!r} has no images in {root}: check the folder or the class names")
        return classes, parts, species_of
    classes, files = (folder_files if cfg.dataset == "folder" else kaggle_files)(root, cfg.classes)
    for c, fs in zip(classes, files):
        if not fs:
            raise GADInputError(f"class {c!r} has no images in {root}: add .jpg or .png files, or check the class names")
        if held_out(len(fs)) < 1 or len(fs) - held_out(len(fs)) < 1:
            raise GADInputError(
                f"class {c!r} in {root} has {len(fs)} image(s): {TEST_FRACTION:.0%} of each class is held out "
                "for evaluation and the rest trains, so each class needs at least 2 images; add images"
            )
    return classes, files, {}


def check_files_serve_n_eval(cfg: RunConfig) -> None:
    """Before anything is decoded: can the test split serve n_eval? (Unreadable files found
    later can still make it fall short; load_dataset checks again.)"""
    classes, files, _ = image_files(cfg)
    if cfg.dataset == "cub":
        test = {c: len(te) for c, (_, te) in zip(classes, files)}
        total = {c: len(tr) + len(te) for c, (tr, te) in zip(classes, files)}
    else:
        test = {c: held_out(len(fs)) for c, fs in zip(classes, files)}
        total = {c: len(fs) for c, fs in zip(classes, files)}
    _check_counts(test, total, cfg.n_eval)


def _split_indices(n: int, n_test: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    perm = torch.randperm(n, generator=gen)
    return perm[n_test:], perm[:n_test]


def real_dataset(cfg: RunConfig) -> Dataset:
    """Folder, Kaggle or CUB images. Folder and Kaggle: a seeded TEST_FRACTION of each class is
    held out; CUB: the official split. Neither depends on n_eval."""
    root = Path(cfg.data_dir).expanduser()
    gen = torch.Generator().manual_seed(cfg.seed)
    classes, files, species_of = image_files(cfg)
    if cfg.dataset == "cub":
        parts = files
    else:
        parts = []
        for fs in files:
            tr, te = _split_indices(len(fs), held_out(len(fs)), gen)
            parts.append(([fs[i] for i in tr.tolist()], [fs[i] for i in te.tolist()]))
    failures: list[str] = []
    splits = []
    for which in (0, 1):
        imgs, labels, paths = [], [], []
        for k, (c, part) in enumerate(zip(classes, parts)):
            x, kept = decode_images(part[which], cfg.image_size, desc=f"decode {c} {'train' if which == 0 else 'test'}",
                                    failures=failures)
            imgs.append(x)
            labels.append(torch.full((len(kept),), k, dtype=torch.long))
            paths += [str(part[which][i]) for i in kept]
        groups = torch.tensor([species_of[Path(p)] for p in paths], dtype=torch.long) if species_of else None
        splits.append(Split(torch.cat(imgs), torch.cat(labels), None, paths, groups))
    for k, c in enumerate(classes):
        for split, what in zip(splits, ("training", "test")):
            if not (split.labels == k).any():
                raise GADInputError(f"class {c!r} has no readable {what} images in {root}: add images")
    return Dataset(splits[0], splits[1], classes, len(failures), tuple(failures))


def load_dataset(cfg: RunConfig) -> Dataset:
    """Build (or read back from the run folder) the dataset that `cfg` describes, and check that
    its test split can serve n_eval evaluation images."""
    build = synthetic_dataset if cfg.dataset == "synthetic" else real_dataset
    files = runfiles.RunFiles(cfg)

    def build_and_list_skipped() -> Dataset:
        data = build(cfg)
        files.skipped_images.unlink(missing_ok=True)
        if data.skipped:
            runfiles.write_text("\n".join(data.skipped_files) + "\n", files.skipped_images)
        return data

    data = runfiles.cached(files.data, runfiles.stamp("data", cfg, runfiles.DATA_FIELDS), build_and_list_skipped)
    if data.skipped:  # said by every notebook, since each may be the one a user opens
        notices.warn(f"{data.skipped} unreadable image file(s) in {cfg.data_dir} were skipped; "
                     f"the list is in {files.skipped_images}")
    check_n_eval(data, cfg.n_eval)
    return data


def check_n_eval(data: Dataset, n_eval: int) -> None:
    test = {c: int((data.test.labels == k).sum()) for k, c in enumerate(data.classes)}
    total = {c: n + int((data.train.labels == k).sum()) for k, (c, n) in enumerate(test.items())}
    _check_counts(test, total, n_eval)


def _check_counts(test: dict[str, int], total: dict[str, int], n_eval: int) -> None:
    per = n_eval // 2
    if min(test.values()) < per:
        have = ", ".join(f"{c!r} {n}" for c, n in test.items())
        totals = ", ".join(f"{c!r} {n}" for c, n in total.items())
        raise GADInputError(
            f"n_eval={n_eval} needs {per} held-out test images per class, but the test split has {have} "
            f"(of {totals} images in all): lower n_eval to at most {2 * min(test.values())} or add images"
        )


def eval_indices(split: Split, n_eval: int, seed: int = 0) -> torch.Tensor:
    """The evaluation images: n_eval/2 test images of each class, class 1 first.

    Each class's test images are shuffled (seeded), then taken round-robin over sub-classes
    (CUB species) so that every species is evaluated before any species gets a second image."""
    per = n_eval // 2
    gen = torch.Generator().manual_seed(seed)
    idx = []
    for k in (0, 1):
        members = torch.nonzero(split.labels == k).flatten()
        if len(members) < per:
            raise GADInputError(f"class {k + 1} has {len(members)} test images but n_eval={n_eval} needs {per} "
                                "per class: lower n_eval")
        members = members[torch.randperm(len(members), generator=gen)]
        if split.groups is not None:
            groups = split.groups[members]
            # round of each image within its group, in shuffled order: 0 for the first of a group
            rounds = torch.zeros(len(members), dtype=torch.long)
            for g in groups.unique():
                where = torch.nonzero(groups == g).flatten()
                rounds[where] = torch.arange(len(where))
            members = members[torch.argsort(rounds, stable=True)]
        idx.append(members[:per])
    return torch.cat(idx)
