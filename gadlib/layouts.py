"""Real-image folders as users have them on disk: class folders, Kaggle Dogs vs. Cats, the
CUB-200-2011 release. Lists and checks files without decoding any, and without importing torch,
so that the runner can answer a bad folder in a fraction of a second."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

from . import notices
from .config import RunConfig, class_key
from .errors import GADInputError


def unreadable_image_errors() -> tuple[type[Exception], ...]:
    """What opening or decoding an image file raises when the file is not a readable image
    (truncated, not an image, too large): the preflight and the loader skip the same files."""
    from PIL import Image, UnidentifiedImageError

    return (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError)


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _entries(folder: Path) -> list[Path]:
    """What `folder` holds, but not hidden names: a Mac's ._photo.jpg (AppleDouble metadata, not an
    image), .DS_Store, .ipynb_checkpoints, .git. A folder that cannot be listed is one line."""
    try:
        return [p for p in folder.iterdir() if not p.name.startswith(".")]
    except OSError as err:
        raise GADInputError(
            f"folder {folder} cannot be read ({err.strerror or type(err).__name__}): check its permissions"
        ) from None


def _image_files(folder: Path) -> list[Path]:
    """The image files of `folder`; a link to one that leads nowhere too, so that decoding skips
    and lists it as unreadable rather than it going unseen."""
    return sorted(p for p in _entries(folder) if (p.is_file() or _dead_link(p)) and p.suffix.lower() in IMAGE_SUFFIXES)


def _dead_link(p: Path) -> bool:
    """A link whose target is gone, or itself."""
    return p.is_symlink() and not p.exists()


def _class_folders(root: Path, strict: bool = True) -> list[str]:
    """The sub-folders that can be classes: not hidden ones nor a Mac archive's __MACOSX. `strict`:
    a link named like a folder (no suffix) that leads nowhere (its target gone, or itself) is
    refused, not left out: it may be a class."""
    entries = _entries(root)
    broken = sorted(p.name for p in entries if _dead_link(p) and not p.suffix)
    if strict and broken:
        raise GADInputError(
            f"{root} holds {len(broken)} link(s) that lead nowhere ({', '.join(broken[:3])}): "
            "mount or restore their targets, or remove the links"
        )
    return sorted(p.name for p in entries if p.is_dir() and p.name != "__MACOSX")


def _nested_images(folder: Path) -> int:
    """Image files in the sub-folders of a class folder, which are not read (hidden ones aside)."""
    return sum(
        1
        for p in folder.rglob("*")
        if p.parent != folder
        and p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.is_file()
    )


def _no_images(c: str, folder: Path) -> GADInputError:
    """A class folder without images: what it holds instead, by suffix, so that images in a
    format not read here (.heic, .avif) are named, not taken for an empty folder."""
    files = [p for p in _entries(folder) if p.is_file()]
    other = Counter(p.suffix.lower() or "no suffix" for p in files)
    held = "; it holds " + ", ".join(f"{n} {s} file(s)" for s, n in other.most_common(3)) if other else ""
    read = ", ".join(sorted(IMAGE_SUFFIXES))
    return GADInputError(f"class {c!r} has no images in {folder}{held}: add .jpg or .png files (read: {read})")


def _require_dir(path: Path, what: str, setting: str = "data_dir") -> Path:
    if not path.is_dir():
        raise GADInputError(f"{what} {path} does not exist or is not a folder: point {setting} at it")
    return path


def folder_files(root: Path, classes: list[str] | None, two: bool = True) -> tuple[list[str], list[list[Path]]]:
    """root/<class>/*.jpg: class names are the sub-folder names (sorted) unless given. `two`: the
    pipeline's two classes exactly (`data.folder_images`, for a model of any number: one or more)."""
    _require_dir(root, "data folder", "data_dir" if two else "folder_images' root")
    if classes is None:
        classes = _class_folders(root)
    if two and len(classes) != 2:
        own = ""
        if not classes and (images := _image_files(root)):  # data_dir one level too low: a class folder
            own = f"; it holds {len(images)} image(s) itself: if it is one class, point data_dir at {root.parent}"
        raise GADInputError(
            f"data folder {root} must hold exactly two class folders (or pass classes=[a, b]), found {classes}{own}"
        )
    if not classes:
        raise GADInputError(f"data folder {root} holds no class folder: put each class's images in root/<class>/")
    if missing := next((c for c in classes if not (root / c).is_dir()), None):  # before any folder's content
        there = _class_folders(root, strict=False)
        raise GADInputError(
            f"class folder {root / missing} does not exist: name {'two of the' if two else 'some of the'} folders "
            f"in {root} ({', '.join(there) or 'none'})"
        )
    files = []
    for c in classes:
        files.append(_image_files(root / c))
        if nested := _nested_images(root / c):
            message = (
                f"{nested} image(s) in sub-folders of class folder {root / c} are not read: "
                f"move them into {root / c} itself"
            )
            if not files[-1]:
                inner = [f for f in _class_folders(root / c, strict=False) if _image_files(root / c / f)]
                if len(inner) >= 2:  # data_dir one level too high: the classes are a level further down
                    raise GADInputError(
                        f"class {c!r} has no images of its own: {root / c} holds folders of images itself "
                        f"({', '.join(inner[:4])}{', ...' if len(inner) > 4 else ''}); if those are the classes, "
                        f"point data_dir at {root / c}"
                    )
                raise GADInputError(f"class {c!r} has no images of its own, and {message}")
            notices.warn(message)
        if not files[-1]:
            raise _no_images(c, root / c)
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
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split(maxsplit=1)
        if not parts:
            continue
        if len(parts) != 2 or not parts[0].isdigit():
            raise GADInputError(
                f"CUB metadata file {path}, line {n}, is not '<id> <value>': {line[:60]!r}; "
                "use the files of the CUB_200_2011 release unchanged"
            )
        out[int(parts[0])] = parts[1].strip()
    return out


def cub_files(root: Path, classes: list[str] | None):
    """CUB-200-2011 release folder; species grouped by name pattern (paper: Warbler vs Sparrow).

    Returns class names and, per class, (train paths, test paths) from the official split, and
    the species id of every path."""
    _require_dir(root, "CUB folder")
    images, labels, species, is_train = (_read_table(root / f) for f in CUB_FILES)
    _require_dir(root / "images", "CUB image folder")
    for iid in images:
        if iid not in labels or iid not in is_train:
            raise GADInputError(
                f"image {iid} of {root / 'images.txt'} has no class or split line: "
                "use the files of the CUB_200_2011 release unchanged"
            )
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
    return [class_key("cub", p) for p in patterns], per_class, species_of


TEST_FRACTION = 0.3  # folder and Kaggle data: the seeded share of each class held out


def held_out(n: int) -> int:
    """How many of a class's n images the folder and Kaggle split holds out."""
    return round(TEST_FRACTION * n)


def image_files(cfg: RunConfig):
    """(class names, per class the files, species of each path) of a real dataset, checked
    before anything is decoded: folder and Kaggle give one list of paths per class, CUB a
    (train, test) pair. Every error is one line naming the folder and what to do."""
    root = Path(cfg.data_dir).expanduser()
    cap = cfg.images_per_class
    if cfg.dataset == "cub":
        classes, parts, species_of = cub_files(root, cfg.classes)
        for c, (tr, te) in zip(classes, parts):
            if not tr and not te:
                raise GADInputError(f"class {c!r} has no images in {root}: check the folder or the class names")
        if cap is not None:
            parts = [_draw_split(tr, te, cap, cfg.seed) for tr, te in parts]
        return classes, parts, species_of
    classes, files = (folder_files if cfg.dataset == "folder" else kaggle_files)(root, cfg.classes)
    if cap is not None:
        files = [draw_files(fs, cap, cfg.seed) for fs in files]
    for c, fs in zip(classes, files):
        if not fs:
            raise GADInputError(
                f"class {c!r} has no images in {root}: add .jpg or .png files, or check the class names"
            )
        if held_out(len(fs)) < 1 or len(fs) - held_out(len(fs)) < 1:
            raise GADInputError(
                f"class {c!r} in {root} has {len(fs)} image(s): {TEST_FRACTION:.0%} of each class is held out "
                "for evaluation and the rest trains, so each class needs at least 2 images; add images"
            )
    return classes, files, {}


def files_fingerprint(parts: list) -> str:
    """SHA-256 of the path, size and modification time of every image file a real dataset reads
    (`image_files`' second item): its decoded images, cached in the run folder, are made again
    once a file is added, removed, replaced or edited (a copy of the folder with new times
    decodes again, at the cost of decoding; what the models see is keyed by the pixels,
    runfiles.split_fingerprint)."""
    h = hashlib.sha256()
    for part in parts:  # per class: the files, or CUB's (train, test)
        for p in [f for group in part for f in group] if isinstance(part, tuple) else part:
            try:
                st = p.stat()
                h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
            except OSError:  # listed (CUB's images.txt) but not there: decoding skips and lists it
                h.update(f"{p}|missing\n".encode())
    return h.hexdigest()


def check_synthetic_serves_n_eval(cfg: RunConfig) -> None:
    """The synthetic test split alternates the classes: n_test // 2 images of the second."""
    half = {"class 1": cfg.n_test - cfg.n_test // 2, "class 2": cfg.n_test // 2}
    if min(half.values()) < cfg.n_eval // 2:
        raise GADInputError(
            f"n_eval={cfg.n_eval} needs {cfg.n_eval // 2} test images per class, but n_test={cfg.n_test} "
            f"gives {min(half.values())}: lower n_eval to at most {2 * min(half.values())} or raise n_test"
        )


def draw_files(paths: list[Path], n: int, seed: int) -> list[Path]:
    """A seeded draw of n of `paths` (images_per_class), in their sorted order; all if n >= len.
    Each file's rank is a hash of the seed and its name: the same draw on any machine and Python
    version, wherever the folder is, and independent between classes."""
    if n >= len(paths):
        return paths
    kept = set(sorted(paths, key=lambda p: hashlib.sha256(f"{seed}/{p.name}".encode()).hexdigest())[:n])
    return [p for p in paths if p in kept]


def _draw_split(train: list[Path], test: list[Path], n: int, seed: int) -> tuple[list[Path], list[Path]]:
    """n images of a class with an official split, drawn so that the split keeps its train share."""
    if n >= len(train) + len(test):
        return train, test
    n_train = min(len(train), n - 1, max(1, round(n * len(train) / (len(train) + len(test)))))
    return draw_files(train, n_train, seed), draw_files(test, n - n_train, seed)


def check_image_files(cfg: RunConfig) -> None:
    """Before the images are decoded: does every class have a file that decodes as an image, and can
    the test split serve n_eval? (Unreadable files found later can still make it fall short;
    load_dataset checks again.)"""
    classes, files, _ = image_files(cfg)
    if cfg.dataset == "cub":
        test = {c: len(te) for c, (_, te) in zip(classes, files)}
        total = {c: len(tr) + len(te) for c, (tr, te) in zip(classes, files)}
        every = [tr + te for tr, te in files]
    else:
        test = {c: held_out(len(fs)) for c, fs in zip(classes, files)}
        total = {c: len(fs) for c, fs in zip(classes, files)}
        every = files
    for c, fs in zip(classes, every):
        check_some_image_opens(c, fs)
    check_counts(test, total, cfg.n_eval, cfg.images_per_class)


def check_some_image_opens(cls: str, files: list[Path]) -> None:
    """A class whose every file fails to decode (text saved as .jpg, an interrupted download, whose
    header opens but whose pixels end early) is refused before a run folder exists. Decoding stops
    at the first file that decodes; one that does not, among others that do, is skipped later,
    with a warning."""
    from PIL import Image

    for p in files:
        try:
            with Image.open(p) as im:
                im.load()  # the pixels too: a truncated file's header opens
                return
        except unreadable_image_errors():
            continue
    if files:
        raise GADInputError(
            f"class {cls!r} has no readable image: none of its {len(files)} files decodes as an image "
            f"(the first: {files[0]}): replace them, or check the folder"
        )


def check_counts(
    test: dict[str, int], total: dict[str, int], n_eval: int, cap: int | None = None, unreadable: int | dict = 0
) -> None:
    """Can the test split serve n_eval? `unreadable`: the files skipped, per class (a dict) or in all."""
    per = n_eval // 2
    of = unreadable if isinstance(unreadable, dict) else dict.fromkeys(test, unreadable)
    if min(test.values()) < per:
        have = ", ".join(f"{c!r} {n}" for c, n in test.items())
        totals = ", ".join(f"{c!r} {n}" for c, n in total.items())
        short = [c for c, n in test.items() if n < per]
        # the cap is the limit only for a class that reached it (unreadable files counted: they were drawn)
        capped = cap is not None and any(total[c] + of[c] >= cap for c in short)
        more = f"raise images_per_class (now {cap})" if capped else "add images"
        n = sum(of.values()) if isinstance(unreadable, dict) else unreadable
        skipped = f", after {n} unreadable file(s) were skipped" if n else ""
        raise GADInputError(
            f"n_eval={n_eval} needs {per} held-out test images per class, but the test split has {have} "
            f"(of {totals} images in all{skipped}): lower n_eval to at most {2 * min(test.values())} or {more}"
        )
