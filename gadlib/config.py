"""Run settings: named profiles, validation, and where a run's files live.

Every notebook builds one `RunConfig` from its Papermill parameters; a parameter left as None
takes the value of the chosen profile. Which settings each run file depends on, and its cache
key, is `gadlib.runfiles`'s business.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
from pathlib import Path

from .errors import GADInputError, negative_alpha

ROOT = Path(__file__).resolve().parent.parent

ARCHS = ("resnet18", "vgg16")
METHODS = ("saliency", "deconvolution", "input_x_gradient", "guided_backprop", "integrated_gradients")
METHOD_SHORT = {
    "saliency": "S",
    "deconvolution": "D",
    "input_x_gradient": "GxI",
    "guided_backprop": "GB",
    "integrated_gradients": "IG",
}
DATASETS = ("synthetic", "folder", "kaggle", "cub")
THRESHOLD_RULES = ("top_q", "frac_max")
# METHOD.md's values, the defaults wherever they are taken (the pipeline, GAD, the consensus rules)
PAPER_ALPHAS = (2.0, 4.0, 6.0, 8.0)
TOP_Q = 0.5  # top_q: the top half of a map's pixels
FRAC_MAX_TAU = 0.1  # frac_max: the pixels at least a tenth of the map's maximum
SUPPORT_LR = 4e-5
OCCLUSION_FILLS = ("zero", "black")
PRECISIONS = ("auto", "fp32", "bf16")
SUPPORT_MODES = ("train", "frozen")

# The numeric settings and what each must be, stated once for RunConfig.validate.
WHOLE_AT_LEAST = {  # whole numbers, each at least this (None: any; n_eval's own rule comes later)
    "n_eval": None,
    "seed": 0,  # numpy's generators (the bootstraps) refuse a negative seed
    "ig_steps": 1,
    "ig_internal_batch": 1,
    "image_size": 8,
    "train_epochs": 1,
    "support_epochs": 1,
    "batch_size": 1,
    "n_train": 1,
    "n_test": 1,
    "bootstrap": 100,
    "images_per_class": 2,
}
FRACTIONS = ("consensus_q", "hull_q", "consensus_tau", "hull_tau", "deletion_step")  # in (0, 1]
POSITIVE = ("smoothgrad_noise", "support_lr", "train_lr")  # > 0
MAY_BE_NONE = ("images_per_class", "train_lr")  # None: every image; the architecture's default
LIST_SETTINGS = ("alphas", "alphas_c2", "methods", "hull_rules", "classes")  # whose values are lists
# The smallest image each architecture runs on: VGG16's five 2 x 2 poolings need 32 px; ResNet18
# pools adaptively (image_size's own least, above, holds for it)
LEAST_IMAGE_SIZE = {"vgg16": 32}
# A run's name is a folder under runs/ and figures/ (a sweep's points one level further down)
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~+=,-]*(/[A-Za-z0-9][A-Za-z0-9._~+=,-]*)*")
# The settings of real image folders, which synthetic data would silently ignore
# (images_per_class is not among them: the smoke profile sets it for every dataset)
FOLDER_SETTINGS = ("data_dir", "classes")


def class_key(dataset: str, given: str) -> str:
    """What a class named `given` is told apart by: a CUB species pattern's words in lower case
    (the class's name in the run), a Kaggle file-name prefix in lower case (matched ignoring
    case), a folder's name as it is (folders differ by case on most file systems)."""
    if dataset == "cub":
        return given.strip("_").lower()
    return given.lower() if dataset == "kaggle" else given


def runs_root(given: str | Path | None = None) -> Path:
    """Where run folders go: `given`, else $GAD_RUNS_DIR, else runs/ of the repository."""
    return Path(given or os.environ.get("GAD_RUNS_DIR") or ROOT / "runs")


def figures_root(given: str | Path | None = None) -> Path:
    """Where figure folders go: `given`, else $GAD_FIGURES_DIR, else figures/ of the repository."""
    return Path(given or os.environ.get("GAD_FIGURES_DIR") or ROOT / "figures")


# Settings that are paths: relative ones are taken from the folder a command runs in.
PATH_SETTINGS = ("data_dir", "checkpoint", "runs_dir", "figures_dir")
# settings whose values are names, read from the command line as typed (parse_value)
NAMED_SETTINGS = (*PATH_SETTINGS, "run_name", "classes")


def absolute_path(path: str | int | os.PathLike) -> str:
    return str(Path(str(path) if isinstance(path, int) else path).expanduser().resolve())


def is_name(value) -> bool:
    """A folder's name as a command line gives it: text, or a whole number (-p data_dir=2024 and
    classes=[0, 1] read as numbers)."""
    return (isinstance(value, str) and bool(value)) or (isinstance(value, int) and not isinstance(value, bool))


def is_path(value) -> bool:
    return is_name(value) or isinstance(value, os.PathLike)


def absolute_paths(params: dict) -> dict:
    """`params` with each path setting (also inside `extra`) absolute, from the current folder:
    the notebooks run inside notebooks/, so a relative path must not reach them as it is."""
    out = {k: absolute_path(v) if k in PATH_SETTINGS and is_path(v) else v for k, v in params.items()}
    if isinstance(out.get("extra"), dict):
        out["extra"] = absolute_paths(out["extra"])
    return out


def absolute_folder_variables() -> None:
    """GAD_RUNS_DIR and GAD_FIGURES_DIR made absolute in this process's environment, which the
    notebook kernels inherit: they run inside notebooks/, where a relative one names another folder."""
    for var in ("GAD_RUNS_DIR", "GAD_FIGURES_DIR"):
        if os.environ.get(var):
            os.environ[var] = absolute_path(os.environ[var])


def support_label(a1: float, a2: float) -> str:
    """How a support's (class 1, class 2) alphas name its files: one name per support of a run."""
    return f"{a1:g}_{a2:g}"


def _listed(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.10g}" for v in values) + "]"


# Profiles. `default` is what a notebook opened in JupyterLab runs: `make reproduce` (both
# architectures, synthetic data) took 6.6 minutes on the fastest 2-core CPU timed and 14.5 on
# the slowest, an AVX2-only EPYC, which took 22 in a slow phase at ba604bc (benchmarks/README.md).
# `smoke` only proves the chain runs (nbval). `paper` is the paper's protocol (GPU).
PROFILES: dict[str, dict] = {
    "smoke": dict(
        image_size=32,
        n_train=96,
        n_test=32,
        train_epochs=1,
        support_epochs=1,
        alphas=[2.0, 8.0],
        n_eval=8,
        ig_steps=4,
        batch_size=32,
        images_per_class=48,  # real folders: enough for n_eval, and the chain runs in seconds
        # five points per deletion curve instead of 21 (notebook 07), and fewer bootstrap
        # resamples (notebooks 06 and 07)
        deletion_step=0.25,
        bootstrap=200,
    ),
    "default": dict(
        image_size=32,
        n_train=2000,
        n_test=400,
        train_epochs=5,
        support_epochs=2,
        alphas=list(PAPER_ALPHAS),
        n_eval=64,
        ig_steps=16,
        batch_size=64,
    ),
    "cpu": dict(
        image_size=64,
        n_train=2000,
        n_test=400,
        train_epochs=8,
        support_epochs=2,
        alphas=list(PAPER_ALPHAS),
        n_eval=64,
        ig_steps=16,
        batch_size=64,
    ),
    "paper": dict(
        image_size=224,
        n_train=4000,
        n_test=1000,
        train_epochs=20,
        support_epochs=10,
        alphas=list(PAPER_ALPHAS),
        n_eval=512,
        ig_steps=50,
        batch_size=64,
    ),
}


@dataclasses.dataclass
class RunConfig:
    profile: str = "default"
    dataset: str = "synthetic"
    data_dir: str | None = None
    classes: list[str] | None = None  # class names (folder/kaggle) or name patterns (cub)
    arch: str = "resnet18"
    run_name: str | None = None
    runs_dir: str | None = None
    figures_dir: str | None = None
    seed: int = 0
    device: str = "auto"
    # data
    image_size: int = 32
    n_train: int = 2000  # synthetic only: images generated for training
    n_test: int = 400  # synthetic only: held-out images
    # real images only: at most this many of each class, a seeded draw made before the split
    # (a quick first run on a large folder); None takes every image
    images_per_class: int | None = None
    # original classifier
    checkpoint: str | None = None  # the user's own trained classifier; None = train here
    pretrained: bool = False  # start from torchvision's ImageNet weights (must be in the torch cache)
    train_epochs: int = 5
    train_lr: float | None = None  # None: 1e-3 for ResNet18, 1e-4 for VGG16
    batch_size: int = 64
    # auto: bf16 autocast on CUDA, fp32 on the CPU; bf16 on the CPU pays only where the CPU has
    # native bf16 (VGG16 1.7x at 32 px, 2.2-2.5x at 64 px here: tools/cpu_bound.py), and trains
    # other models than fp32 does
    train_precision: str = "auto"
    # supports (METHOD.md step 2)
    alphas: list[float] = dataclasses.field(default_factory=lambda: list(PAPER_ALPHAS))
    alphas_c2: list[float] | None = None  # alpha for class-2 images; None = same as alphas
    support_epochs: int = 2
    support_lr: float = SUPPORT_LR
    # train: batch norm uses batch statistics (and updates its running ones) and dropout is on
    # while a support trains, as in the paper's fine-tuning; frozen: both held in eval mode
    support_mode: str = "train"
    # attributions
    methods: list[str] = dataclasses.field(default_factory=lambda: list(METHODS))
    n_eval: int = 64
    ig_steps: int = 16
    ig_internal_batch: int = 256
    precision: str = "auto"  # auto: bf16 where the device has it and the maps still agree with fp32
    # consensus (METHOD.md step 3) and hulls (metrics)
    consensus_rule: str = "top_q"
    consensus_q: float = TOP_Q
    consensus_tau: float = FRAC_MAX_TAU
    hull_rules: list[str] = dataclasses.field(default_factory=lambda: ["top_q", "frac_max"])
    hull_q: float = TOP_Q
    hull_tau: float = FRAC_MAX_TAU
    occlusion_fill: str = "zero"
    # controls (notebook 07)
    smoothgrad_noise: float = 0.15  # SmoothGrad's noise sd, as a share of the input range
    deletion_step: float = 0.05  # deletion / insertion curves: share of the pixels per step
    bootstrap: int = 2000  # resamples of the paired bootstrap intervals

    @classmethod
    def build(cls, profile: str | None = None, **params) -> "RunConfig":
        """Profile values, then every parameter that is not None on top."""
        source = "" if profile else " (from the environment's GAD_PROFILE)" if "GAD_PROFILE" in os.environ else ""
        profile = profile or os.environ.get("GAD_PROFILE", "default")
        if profile not in PROFILES:
            raise GADInputError(f"unknown profile {profile!r}{source}: choose one of {', '.join(PROFILES)}")
        if unknown := sorted(set(params) - set(SETTINGS)):
            raise GADInputError(unknown_settings(unknown))
        values = dict(PROFILES[profile])
        values.update({k: v for k, v in params.items() if v is not None})
        cfg = cls(profile=profile, **values)
        cfg.validate()
        return cfg

    @classmethod
    def from_params(cls, params: dict) -> "RunConfig":
        """A run's settings as a notebook builds them from its parameters (those named like a
        field) and its `extra` dict of any other field; one given both ways is refused. The
        runner's and the sweep's checks before a run build them so too."""
        extra = params.get("extra") or {}
        given = {k: v for k, v in params.items() if k in cls.__dataclass_fields__}
        if twice := sorted(set(given) & set(extra)):
            raise GADInputError(f"{', '.join(twice)} given both as a parameter and in extra: give each once")
        return cls.build(**given, **extra)

    def validate(self) -> None:
        def choose(what, value, allowed):
            if value not in allowed:
                raise GADInputError(f"unknown {what} {value!r}: choose one of {', '.join(allowed)}")

        def is_number(value) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        for name, least in WHOLE_AT_LEAST.items():
            value = getattr(self, name)
            if value is None and name in MAY_BE_NONE:
                continue
            whole = is_number(value) and math.isfinite(value) and value == int(value)
            if not whole or (least is not None and value < least):
                raise GADInputError(
                    f"{name} must be a whole number{'' if least is None else f' >= {least}'}, got {value!r}"
                )
            setattr(self, name, int(value))
        for name in (*FRACTIONS, *POSITIVE):
            value = getattr(self, name)
            if value is None and name in MAY_BE_NONE:
                continue
            if not (is_number(value) and math.isfinite(value)):
                raise GADInputError(f"{name} must be a {'finite ' if is_number(value) else ''}number, got {value!r}")
            if name in FRACTIONS and not 0 < value <= 1:
                raise GADInputError(f"{name} must be in (0, 1], got {value}")
            if name in POSITIVE and not value > 0:
                raise GADInputError(f"{name} must be > 0, got {value}")
        for name in LIST_SETTINGS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, (list, tuple)):
                raise GADInputError(f"{name} must be a list, e.g. -p {name}='[...]', got {value!r}")
        for name in ("methods", "hull_rules"):  # a name twice would run, and count, its work twice
            value = list(getattr(self, name))
            if twice := next((v for v in value if value.count(v) > 1), None):
                raise GADInputError(f"{name} names {twice!r} twice ({value!r}): name each once")
        if self.run_name is not None and not RUN_NAME.fullmatch(str(self.run_name)):
            raise GADInputError(
                f"run_name {self.run_name!r} is not a folder name (an unset variable, or a path?): give letters, "
                "digits and . _ - (e.g. my-run), or leave it out for <dataset>-<profile>"
            )
        if self.classes is not None:
            if len(self.classes) != 2 or not all(isinstance(c, str) and c.strip() for c in self.classes):
                numbers = (
                    " as text (e.g. ['0', '1'])"
                    if any(is_name(c) and not isinstance(c, str) for c in self.classes)
                    else ""
                )
                raise GADInputError(
                    f"classes must name two classes{numbers} (folder names, or species name patterns for cub), "
                    f"got {self.classes!r}"
                )
            if class_key(self.dataset, self.classes[0]) == class_key(self.dataset, self.classes[1]):
                raise GADInputError(f"classes names one class twice ({self.classes!r}): name two different classes")
            if self.dataset == "cub":
                for pattern in self.classes:
                    try:
                        re.compile(pattern)
                    except re.error as err:
                        raise GADInputError(
                            f"classes pattern {pattern!r} is not a regular expression ({err}): "
                            "give species name patterns such as Warbler"
                        ) from None
        if str(self.pretrained).lower() in ("true", "false"):  # -p pretrained=true reaches here as a string
            self.pretrained = str(self.pretrained).lower() == "true"
        if not isinstance(self.pretrained, bool):
            raise GADInputError(f"pretrained must be True or False, got {self.pretrained!r}")
        if not re.fullmatch(r"auto|cpu|mps|(cuda|xpu)(:\d+)?", str(self.device)):
            raise GADInputError(f"unknown device {self.device!r}: choose auto, cpu, cuda, cuda:N, xpu or mps")
        for a in [*self.alphas, *(self.alphas_c2 or [])]:
            if not (is_number(a) and math.isfinite(a)):
                raise GADInputError(f"alphas must be {'finite ' if is_number(a) else ''}numbers, got {a!r}")
            if a < 0:  # as GAD.fit refuses them, but before any stage runs
                raise negative_alpha(repr(a))
        choose("architecture", self.arch, ARCHS)
        if self.image_size < (least := LEAST_IMAGE_SIZE.get(self.arch, 0)):
            raise GADInputError(
                f"image_size {self.image_size} is too small for {self.arch}: give image_size >= {least}"
            )
        choose("dataset", self.dataset, DATASETS)
        choose("consensus rule", self.consensus_rule, THRESHOLD_RULES)
        choose("occlusion fill", self.occlusion_fill, OCCLUSION_FILLS)
        choose("precision", self.precision, PRECISIONS)
        choose("train precision", self.train_precision, PRECISIONS)
        choose("support mode", self.support_mode, SUPPORT_MODES)
        for m in self.methods:
            choose("attribution method", m, METHODS)
        for r in self.hull_rules:
            choose("hull rule", r, THRESHOLD_RULES)
        if not self.methods:
            raise GADInputError("methods is empty: name at least one attribution method")
        if not self.hull_rules:
            raise GADInputError(f"hull_rules is empty: name at least one of {', '.join(THRESHOLD_RULES)}")
        if not self.alphas:
            raise GADInputError("alphas is empty: give at least one distancing value, e.g. [2, 4, 6, 8]")
        if self.alphas_c2 is not None and len(self.alphas_c2) != len(self.alphas):
            raise GADInputError(
                f"alphas_c2 has {len(self.alphas_c2)} values but alphas has {len(self.alphas)}: give one per support"
            )
        if self.checkpoint is not None and not str(self.checkpoint).strip():  # an unset $CKPT: not "train one"
            raise GADInputError(
                "checkpoint is empty (an unset variable after checkpoint=?): give the path of your trained "
                "classifier, or leave checkpoint out to train one here"
            )
        if self.dataset != "synthetic" and not self.data_dir:
            raise GADInputError(f"dataset {self.dataset!r} needs data_dir: the folder that holds the images")
        if self.dataset == "synthetic" and (given := [n for n in FOLDER_SETTINGS if getattr(self, n) is not None]):
            it = "them" if len(given) > 1 else "it"
            raise GADInputError(
                f"{' and '.join(given)} given with the synthetic dataset, which would ignore {it}: for your "
                f"images add --dataset folder (make: DATASET=folder), cub or kaggle; else leave {it} out"
            )
        if self.n_eval < 2 or self.n_eval % 2:
            raise GADInputError(f"n_eval must be an even number >= 2 (half per class), got {self.n_eval}")
        # One spelling per value, so that equal settings give equal cache keys.
        self.alphas = [float(a) for a in self.alphas]
        if self.alphas_c2 is not None:
            self.alphas_c2 = [float(a) for a in self.alphas_c2]
        labels = [support_label(*pair) for pair in self.support_alphas]
        if twice := next((x for x in labels if labels.count(x) > 1), None):
            raise GADInputError(
                f"two supports have alpha {twice.replace('_', ' / ')} (class 1 / class 2; alphas {_listed(self.alphas)}"
                f"{'' if self.alphas_c2 is None else ', alphas_c2 ' + _listed(self.alphas_c2)}): "
                "give each support its own alpha"
            )
        for name in PATH_SETTINGS:
            value = getattr(self, name)
            if is_path(value):
                setattr(self, name, absolute_path(value))
            elif value not in (None, ""):
                raise GADInputError(f"{name} must be a path, got {value!r}: give a folder or file name")

    # ----- derived values -----
    @property
    def support_alphas(self) -> list[tuple[float, float]]:
        """(alpha for class-1 images, alpha for class-2 images), one pair per support."""
        c2 = self.alphas_c2 if self.alphas_c2 is not None else self.alphas
        return [(float(a), float(b)) for a, b in zip(self.alphas, c2)]

    @property
    def lr(self) -> float:
        return self.train_lr if self.train_lr is not None else (1e-3 if self.arch == "resnet18" else 1e-4)

    @property
    def name(self) -> str:
        return self.run_name or f"{self.dataset}-{self.profile}"

    @property
    def run_dir(self) -> Path:
        return runs_root(self.runs_dir) / self.name

    @property
    def arch_dir(self) -> Path:
        return self.run_dir / self.arch

    @property
    def figure_dir(self) -> Path:
        return figures_root(self.figures_dir) / self.name

    def with_arch(self, arch: str) -> "RunConfig":
        return dataclasses.replace(self, arch=arch)


SETTINGS = [f.name for f in dataclasses.fields(RunConfig)]  # every setting a run takes


def yaml_problem(err: Exception) -> str:
    """What a YAML parser error says is wrong, and where, on one line."""
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"{getattr(err, 'problem', None) or type(err).__name__}{where}"


def parse_value(item: str, example: str = "-p classes='[cats, dogs]'"):
    """The value of a NAME=VALUE item as the runner and the sweep read it: a Python literal
    ("0.3", "[2, 4]", "None"), else a YAML list or mapping ("[cats, dogs]"), else the text itself
    (a path, a name: YAML would turn "yes" into True, "010" into 8, a date into a date, and cut
    a run name at " #"). A list or mapping that neither reads is a one-line error showing `example`."""
    import ast

    import yaml

    name, _, text = item.partition("=")
    if not text.strip():  # an unset shell variable: kept as given, so that a setting can refuse it
        return text
    if name.strip() in NAMED_SETTINGS and text.strip() != "None":  # None: unset, as for any setting
        # names as typed: 2024, 010, 1_000 and 0x1F are folders, not numbers
        if text.lstrip()[:1] != "[":
            return text
        try:  # a list of them (classes, or a sweep's paths): every item as text
            return yaml.load(text, Loader=yaml.BaseLoader)
        except yaml.YAMLError as err:
            raise GADInputError(f"-p {item!r} is not a list of values ({yaml_problem(err)}): e.g. {example}") from None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    if text.lstrip()[:1] not in ("[", "{"):
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise GADInputError(f"-p {item!r} is not a list of values ({yaml_problem(err)}): e.g. {example}") from None


def unknown_settings(names: list[str], what: str = "parameter(s)") -> str:
    """The one-line error for names that are not settings, each with the nearest one where there
    is one ("'ig_step' (did you mean ig_steps?)")."""
    hints = [
        f"{name!r} (did you mean {close[0]}?)"
        if (close := difflib.get_close_matches(name, SETTINGS, 1))
        else repr(name)
        for name in names
    ]
    return f"unknown {what} {', '.join(hints)}: the settings are RunConfig's fields (gadlib/config.py)"
