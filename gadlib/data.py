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

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import functional as TF
from tqdm.auto import tqdm

from . import notices, runfiles
from .config import RunConfig
from .errors import GADInputError
from .inputs import check_count, is_whole, short_repr
from .layouts import (
    check_counts,
    draw_files,
    files_fingerprint,
    folder_files,
    held_out,
    image_files,
    unreadable_image_errors,
)
from .synthetic import CLASS_NAMES, make_synthetic

# Bumped when decoding changes what an image file gives (2: 16-bit greyscale scaled to 8 bits,
# 0989fab; 3: float greyscale in [0, 1] scaled): a run folder's cached images are decoded again.
DECODER_VERSION = 3

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
    skipped_by_class: tuple[int, ...] = ()  # how many of them each class had (empty in data cached before)


def normalize(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float, ImageNet-normalised model input (the space occlusion fills in)."""
    x = images_uint8.float() / 255.0
    return (x - IMAGENET_MEAN.to(x.device)) / IMAGENET_STD.to(x.device)


# ---------------------------------------------------------------- synthetic
def synthetic_dataset(cfg: RunConfig) -> Dataset:
    def split(n, seed):
        img, labels, masks = make_synthetic(n, cfg.image_size, seed)
        return Split((img * 255).round().to(torch.uint8), labels, masks)

    return Dataset(split(cfg.n_train, 2 * cfg.seed), split(cfg.n_test, 2 * cfg.seed + 1), list(CLASS_NAMES))


# ---------------------------------------------------------------- real images
def decode_images(
    paths: list[Path], size: int, desc: str = "decode", failures: list[str] | None = None
) -> tuple[torch.Tensor, list[int]]:
    """Decode, convert to RGB (greyscale, CMYK, RGBA, palette PNG ...), resize the short side to
    `size` and centre-crop. Unreadable files are skipped: listed as "path: why" in `failures`,
    or else each with a warning. Returns the images and the indices of the paths kept.

    The files are decoded on a pool of threads, as many as torch's (a sweep's point has its share
    of the cores) up to DECODE_THREADS (PIL releases the GIL while it decodes and resizes), and
    kept in the order of `paths`: the same images as one at a time."""
    workers = max(1, min(DECODE_THREADS, torch.get_num_threads(), len(paths)))
    with ThreadPoolExecutor(workers) as pool:
        decoded = list(tqdm(pool.map(lambda p: _decode(p, size), paths), total=len(paths), desc=desc, leave=False))
    out, kept = [], []
    for i, (p, image) in enumerate(zip(paths, decoded)):
        if isinstance(image, torch.Tensor):
            out.append(image)
            kept.append(i)
        elif failures is None:
            notices.warn(f"skipped unreadable image {p}: {image}")
        else:
            failures.append(f"{p}: {image}")
    if not out:
        return torch.empty(0, 3, size, size, dtype=torch.uint8), kept
    return torch.stack(out), kept


DECODE_THREADS = 16


def _decode(path: Path, size: int) -> torch.Tensor | Exception:
    """One file as decode_images keeps it, or the error that makes it unreadable."""
    try:
        with Image.open(path) as im:
            return TF.pil_to_tensor(TF.center_crop(TF.resize(_rgb(im), size, antialias=True), size))
    except unreadable_image_errors() as err:
        return err


def _rgb(im: Image.Image) -> Image.Image:
    """The image in 8-bit RGB. 16-bit greyscale is scaled to 8 bits first (PIL's own conversion
    clips it at 255, which turns such an image white): "I;16" modes always, 32-bit "I" (how PIL
    opens some 16-bit files) when a value exceeds 255, since the mode does not say the depth;
    float greyscale ("F", as float TIFFs open) is taken as [0, 1] where no value exceeds 1 (PIL
    would make such an image black), else as 8-bit values."""
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        a = torch.from_numpy(np.asarray(im, dtype=np.float64).copy()).nan_to_num(0.0)
        if im.mode == "F":
            peak = 1.0 if a.max() <= 1 else 255.0
        else:
            peak = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        im = Image.fromarray((a.clamp(0, peak) * 255 / peak).round().to(torch.uint8).numpy())  # 2-D uint8: mode L
    return im.convert("RGB")


class FolderImages(NamedTuple):
    images: torch.Tensor  # (N, 3, size, size) uint8, as GAD.fit takes them; normalize() gives the model's input
    labels: torch.Tensor  # (N,) the model's class index of each image
    classes: list[str]  # the class folders read
    paths: list[str]  # each image's file


def folder_images(
    root,
    size: int = 224,
    classes: list[str] | dict[str, int] | None = None,
    per_class: int | None = None,
    seed: int = 0,
) -> FolderImages:
    """Images of root/<class>/*.jpg for GAD on your own model (`GAD.fit`, `explain`, `evaluate`),
    decoded as the pipeline decodes them: RGB, the short side resized to `size`, centre-cropped.
    `classes`: the class folders, labelled by position (default: every sub-folder, sorted), or
    {folder: your model's class index} (two folders may share an index); `per_class`: at most this
    many images of each class, a seeded draw. Unreadable files are skipped with a warning; a
    missing folder, a class without readable images or a bad setting is a one-line GADInputError."""
    if not isinstance(root, (str, os.PathLike)):
        raise GADInputError(
            f"folder_images' root is {short_repr(root)}: give the folder of class folders (root/<class>/)"
        )
    root = Path(root).expanduser()
    for name, value in (("size", size), ("per_class", 1 if per_class is None else per_class)):
        check_count(name, value)
    index = None
    if isinstance(classes, str) or (classes is not None and not list(classes)):
        raise GADInputError(f"classes={short_repr(classes)}: give a list of class folders, e.g. ['cats', 'dogs']")
    if classes is not None and len(set(classes)) < len(list(classes)):
        raise GADInputError(f"classes={short_repr(classes)} names a folder twice: give each once")
    if isinstance(classes, dict):
        if bad := next(((c, i) for c, i in classes.items() if not is_whole(i) or i < 0), None):
            raise GADInputError(f"class {bad[0]!r} maps to {short_repr(bad[1])}: give each folder a class index >= 0")
        classes, index = list(classes), [int(i) for i in classes.values()]
    names, files = folder_files(root, None if classes is None else list(classes), two=False)
    index = index or list(range(len(names)))
    images, labels, paths = [], [], []
    for c, k, fs in zip(names, index, files):
        fs = draw_files(fs, int(per_class), seed) if per_class is not None else fs
        failures: list[str] = []
        x, kept = decode_images(fs, int(size), desc=f"decode {c}", failures=failures)
        if not kept:
            why = f" ({len(failures)} unreadable, the first {failures[0]})" if failures else ""
            raise GADInputError(f"class {c!r} has no readable images in {root / c}{why}: add .jpg or .png files")
        if failures:
            notices.warn(f"{len(failures)} unreadable image(s) of class {c!r} skipped, the first {failures[0]}")
        images.append(x)
        labels.append(torch.full((len(kept),), k, dtype=torch.long))
        paths += [str(fs[i]) for i in kept]
    return FolderImages(torch.cat(images), torch.cat(labels), names, paths)


def _split_indices(n: int, n_test: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    perm = torch.randperm(n, generator=gen)
    return perm[n_test:], perm[:n_test]


def real_dataset(cfg: RunConfig, listing: tuple | None = None) -> Dataset:
    """Folder, Kaggle or CUB images. Folder and Kaggle: a seeded TEST_FRACTION of each class is
    held out; CUB: the official split. Neither depends on n_eval. listing: `image_files(cfg)`,
    where the caller has it already."""
    root = Path(cfg.data_dir).expanduser()
    gen = torch.Generator().manual_seed(cfg.seed)
    classes, files, species_of = listing or image_files(cfg)
    if cfg.dataset == "cub":
        parts = files
    else:
        parts = []
        for fs in files:
            tr, te = _split_indices(len(fs), held_out(len(fs)), gen)
            parts.append(([fs[i] for i in tr.tolist()], [fs[i] for i in te.tolist()]))
    failures: list[str] = []
    failed = {}  # (class, split): its unreadable files, "path: why"
    splits = []
    for which in (0, 1):
        imgs, labels, paths = [], [], []
        for k, (c, part) in enumerate(zip(classes, parts)):
            before = len(failures)
            x, kept = decode_images(
                part[which], cfg.image_size, desc=f"decode {c} {'train' if which == 0 else 'test'}", failures=failures
            )
            failed[k, which] = failures[before:]
            imgs.append(x)
            labels.append(torch.full((len(kept),), k, dtype=torch.long))
            paths += [str(part[which][i]) for i in kept]
        groups = torch.tensor([species_of[Path(p)] for p in paths], dtype=torch.long) if species_of else None
        splits.append(Split(torch.cat(imgs), torch.cat(labels), None, paths, groups))
    for k, c in enumerate(classes):
        for which, (split, what) in enumerate(zip(splits, ("training", "test"))):
            if not (split.labels == k).any():
                bad = failed[k, which]
                why = f" ({len(bad)} unreadable, the first {bad[0]})" if bad else ""
                raise GADInputError(f"class {c!r} has no readable {what} images in {root}{why}: add images")
    by_class = tuple(len(failed[k, 0]) + len(failed[k, 1]) for k in range(len(classes)))
    return Dataset(splits[0], splits[1], classes, len(failures), tuple(failures), by_class)


def load_dataset(cfg: RunConfig) -> Dataset:
    """Build (or read back from the run folder) the dataset that `cfg` describes, and check that
    its test split can serve n_eval evaluation images."""
    files = runfiles.RunFiles(cfg)
    # real images: the files as they are now (listed once, for the key and for decoding on a
    # cache miss), and how they are decoded; synthetic ones are made from the settings alone
    listing = None if cfg.dataset == "synthetic" else image_files(cfg)

    def build_and_list_skipped() -> Dataset:
        data = synthetic_dataset(cfg) if listing is None else real_dataset(cfg, listing)
        files.skipped_images.unlink(missing_ok=True)
        if data.skipped:
            runfiles.write_text("\n".join(data.skipped_files) + "\n", files.skipped_images)
        return data

    source = {} if listing is None else {"files": files_fingerprint(listing[1]), "decoder": DECODER_VERSION}
    data = runfiles.cached(
        files.data, runfiles.stamp("data", cfg, runfiles.DATA_FIELDS, **source), build_and_list_skipped
    )
    if data.skipped:  # said by every notebook, since each may be the one a user opens
        if not files.skipped_images.is_file() and data.skipped_files:
            runfiles.write_text("\n".join(data.skipped_files) + "\n", files.skipped_images)
        notices.warn(
            f"{data.skipped} unreadable image file(s) in {cfg.data_dir} were skipped; "
            f"the list is in {files.skipped_images}"
        )
    check_n_eval(data, cfg.n_eval, None if cfg.dataset == "synthetic" else cfg.images_per_class)
    return data


def check_n_eval(data: Dataset, n_eval: int, cap: int | None = None) -> None:
    test = {c: int((data.test.labels == k).sum()) for k, c in enumerate(data.classes)}
    total = {c: n + int((data.train.labels == k).sum()) for k, (c, n) in enumerate(test.items())}
    # each class's own unreadable files (a cache made before they were counted by class: all of them)
    skipped = dict(zip(test, data.skipped_by_class)) if data.skipped_by_class else data.skipped
    check_counts(test, total, n_eval, cap, skipped)


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
            raise GADInputError(
                f"class {k + 1} has {len(members)} test images but n_eval={n_eval} needs {per} per class: lower n_eval"
            )
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
