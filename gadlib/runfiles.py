"""Every file of a run: where it lives, the stamp of the settings that made it, and the checks
that stop a stage from using a file made under other settings.

A *stamp* is {"stage", "settings", "inputs", "key"}: `settings` are the run settings the file
depends on (numbers normalised, so `[2, 4]` and `[2.0, 4.0]` are the same), `inputs` are the
fingerprints or keys of what it was computed from (models, upstream files), and `key` is a
hash of both. Torch files store {"stamp", "value"}; CSV files carry the stamp as their first
line, `# gad {...}` (read them with `pandas.read_csv(path, comment="#")` or `read_csv` here).

A stage that finds its *own* output under another key recomputes it; a stage that finds
*another* stage's output under other settings stops with a one-line error that names the
setting and the notebook to rerun. Writes are atomic (temporary file, then rename; in
`runfolder.py`, with the lock a run holds on its folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from .config import RunConfig, support_label
from .errors import GADInputError
from .runfolder import atomic_write, holder_path, holding, lock_path

# Settings each kind of file depends on; each tuple contains the ones before it.
DATA_FIELDS = ("dataset", "data_dir", "classes", "image_size", "n_train", "n_test", "images_per_class", "seed")
MODEL_FIELDS = DATA_FIELDS + (
    "arch",
    "checkpoint",
    "pretrained",
    "train_epochs",
    "train_lr",
    "batch_size",
    "train_precision",
)
SUPPORT_FIELDS = MODEL_FIELDS + ("support_epochs", "support_lr", "support_mode")
FAMILY_FIELDS = SUPPORT_FIELDS + ("alphas", "alphas_c2")
EVAL_FIELDS = DATA_FIELDS + ("n_eval",)  # which images are explained
COMPLEXITY_FIELDS = FAMILY_FIELDS + (
    "n_eval",
    "ig_steps",
    "methods",
    "precision",
    "consensus_rule",
    "consensus_q",
    "consensus_tau",
    "hull_rules",
    "hull_q",
    "hull_tau",
)
PRECISION_FIELDS = COMPLEXITY_FIELDS  # the probe judges what the tables use
SENSITIVITY_FIELDS = COMPLEXITY_FIELDS + ("occlusion_fill",)

CONTROL_FIELDS = SENSITIVITY_FIELDS + ("smoothgrad_noise", "deletion_step", "bootstrap")
# Settings added after runs were made: at this value they are left out of a stamp, so files made
# before the setting existed (under what is still its default) keep their keys.
LATER_DEFAULTS = {"support_mode": "train", "images_per_class": None, "train_precision": "auto"}

# Which notebook writes which stage's files (for the "rerun notebook ..." advice).
MADE_BY = {
    "data": "01_data",
    "original": "02_support_training",
    "support": "02_support_training",
    "models": "02_support_training",
    "precision": "03_attributions",
    "attributions": "03_attributions",
    "complexity": "04_complexity",
    "sensitivity": "05_sensitivity",
    "tables": "06_figures",
    "control": "07_controls",
    "controls": "07_controls",
}


# ---------------------------------------------------------------- keys
def normalise(value: Any) -> Any:
    """A JSON-ready value in which every number is a float, so equal settings hash equally."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in value.items()}
    return str(value)


def _hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def stamp(stage: str, cfg: RunConfig, fields: tuple[str, ...], **inputs: Any) -> dict:
    """The stamp of a file made by `stage` from the `fields` of `cfg` and the given inputs."""
    settings = {
        f: normalise(getattr(cfg, f))
        for f in fields
        if not (f in LATER_DEFAULTS and getattr(cfg, f) == LATER_DEFAULTS[f])
    }
    inputs = normalise(inputs)
    return {
        "stage": stage,
        "settings": settings,
        "inputs": inputs,
        "key": _hash({"stage": stage, "settings": settings, "inputs": inputs}),
    }


def fingerprint(model: nn.Module) -> str:
    """SHA-256 of the model's CPU state_dict: every parameter and buffer, names, dtypes, shapes."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def split_fingerprint(split) -> str:
    """SHA-256 of a data split: its file paths (real images), its pixels and its labels. The
    pixels too, so that a model trained before an image file was replaced at the same path is
    not reused (the synthetic data have no paths; their fingerprint is what it always was)."""
    h = hashlib.sha256()
    if split.paths is not None:
        h.update("\n".join(split.paths).encode())
    h.update(split.images.contiguous().numpy())  # the buffer itself, not a copy of it
    h.update(split.labels.numpy().tobytes())
    return h.hexdigest()


def _compared(stored: dict, expected: dict, part: str) -> list[str]:
    """The names of `part` that a reader of `stored` under `expected` compares: those `expected`
    names, and a later-default setting `stored` names (`stamp` leaves one out at its default, so
    a file made with support_mode='frozen' read by a run at 'train' differs there)."""
    names = set(expected.get(part, {}))
    if part == "settings":
        names |= set(stored.get(part, {})) & set(LATER_DEFAULTS)
    return sorted(names)


def _value(st: dict, part: str, name: str) -> Any:
    """A stamp's value of `name`; a later-default setting it leaves out is at its default."""
    missing = normalise(LATER_DEFAULTS[name]) if part == "settings" and name in LATER_DEFAULTS else "<missing>"
    return st.get(part, {}).get(name, missing)


def difference(stored: dict, expected: dict) -> str | None:
    """'name=old (this run: new)' for the first setting or input that differs, else None."""
    for part in ("settings", "inputs"):
        for name in _compared(stored, expected, part):
            old, new = _value(stored, part, name), _value(expected, part, name)
            if old != new:
                if part == "inputs":
                    return f"other {name} than this run has (the models or an earlier stage changed)"
                return f"{name}={_show(old)} (this run: {_show(new)})"
    return None


def _show(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return repr(v)


def check(path: Path, stored: dict | None, expected: dict, partial: bool = False) -> None:
    """Stop with a one-line error if `stored` (the stamp of another stage's file) was not made
    under `expected`. With partial, only the settings and inputs named in `expected` are
    compared (a reader that cannot know every input of the file), and the later-default settings
    (LATER_DEFAULTS) the file names: every partial reader's fields include those."""
    made_by = MADE_BY.get(expected["stage"], "the earlier notebooks")
    if stored is None:
        raise GADInputError(f"{path} is missing or was written by an older gadlib: run notebook {made_by} first")
    why = difference(stored, expected)
    if (why is None) if partial else stored.get("key") == expected["key"]:
        return
    why = why or "another key"
    raise GADInputError(
        f"{path} was made with {why}: rerun notebook {made_by} with this run's settings, or use another run_name"
    )


def check_key(path: Path, stored: dict | None, key: str, stage: str, of: Path) -> None:
    """Stop with a one-line error unless `path` (made by `stage`) is the file that `of` was made
    from: a file rewritten by a later run with other settings must not be mixed in."""
    made_by = MADE_BY.get(stage, "the earlier notebooks")
    if stored is None or stored.get("key") != key:
        raise GADInputError(
            f"{path} is not the one {of.name} was made from (a later run with other settings "
            f"rewrote one of them): rerun notebook {made_by} and the notebooks after it"
        )


# ---------------------------------------------------------------- torch files
def save(path: Path, value: Any, st: dict) -> None:
    """Atomically store `value` with its stamp."""
    atomic_write(path, lambda f: torch.save({"stamp": st, "value": value}, f))


def load(path: Path) -> tuple[Any, dict | None]:
    """(value, stamp) of a stored file; (None, None) if it is missing or has no stamp."""
    path = Path(path)
    if not path.is_file():
        return None, None
    # Memory-mapped (copy-on-write) where files can be replaced while mapped: a stage reads its
    # inputs' pages as it uses them instead of copying gigabytes of maps at once. Every file is
    # replaced by a rename, never rewritten in place, so a mapping always sees a whole file.
    stored = torch.load(path, map_location="cpu", weights_only=False, mmap=os.name == "posix")
    if not isinstance(stored, dict) or "stamp" not in stored:
        return None, None
    return stored["value"], stored["stamp"]


def load_own(path: Path, st: dict) -> Any | None:
    """The stored value if `path` was made under stamp `st`, else None (the caller recomputes)."""
    value, stored = load(path)
    return value if stored is not None and stored.get("key") == st["key"] else None


def cached(path: Path, st: dict, compute) -> Any:
    value = load_own(path, st)
    if value is None:
        value = compute()
        save(path, value, st)
    return value


def load_input(path: Path, expected: dict, partial: bool = False) -> tuple[Any, dict]:
    """Another stage's stored (value, stamp), after checking it was made under `expected`."""
    value, stored = load(path)
    check(path, stored, expected, partial)
    return value, stored


# ---------------------------------------------------------------- CSV and Markdown files
STAMP_PREFIX = "# gad "


def write_csv(df: pd.DataFrame, path: Path, st: dict, index: bool = False) -> None:
    """A CSV whose first line is the stamp."""
    text = STAMP_PREFIX + json.dumps(st, sort_keys=True) + "\n" + df.to_csv(index=index)
    atomic_write(path, lambda f: f.write(text.encode()))


def read_csv(path: Path, **kwargs) -> tuple[pd.DataFrame | None, dict | None]:
    """(table, stamp); (None, None) if the file is missing, (table, None) if it has no stamp."""
    path = Path(path)
    if not path.is_file():
        return None, None
    with open(path) as f:
        first = f.readline()
    st = json.loads(first[len(STAMP_PREFIX) :]) if first.startswith(STAMP_PREFIX) else None
    return pd.read_csv(path, skiprows=1 if st else 0, **kwargs), st


KEY_COMMENT = "<!-- gad key"  # a Markdown table's last line: the key(s) of the rows it was made from


def key_comment(*keys: str) -> str:
    """The HTML comment that names the keys a Markdown table was made from ("gad keys" for several)."""
    return f"{KEY_COMMENT}{'s' if len(keys) > 1 else ''} {' '.join(keys)} -->"


def read_key(text: str) -> str | None:
    """The one key of a Markdown table's `key_comment`, or None where it has none."""
    found = re.search(rf"^{re.escape(KEY_COMMENT)} (\w+) -->$", text, re.M)
    return found.group(1) if found else None


def write_text(text: str, path: Path, st: dict | None = None) -> None:
    """A text file (Markdown table), with the stamp's key as a trailing HTML comment."""
    if st is not None:
        text = text.rstrip("\n") + f"\n\n{key_comment(st['key'])}\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def strip_key(text: str) -> str:
    """A Markdown table without the key comment `write_text` adds."""
    return "\n".join(line for line in text.rstrip("\n").splitlines() if not line.startswith(KEY_COMMENT)).rstrip("\n")


# ---------------------------------------------------------------- paths
class RunFiles:
    """Paths of one run folder and one architecture. Stages read and write only through here."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg

    @property
    def run_dir(self) -> Path:
        return self.cfg.run_dir

    @property
    def arch_dir(self) -> Path:
        return self.cfg.arch_dir

    def arch(self, arch: str) -> "RunFiles":
        return RunFiles(self.cfg.with_arch(arch))

    # 01
    @property
    def data(self) -> Path:
        return self.run_dir / "data.pt"

    @property
    def skipped_images(self) -> Path:
        return self.run_dir / "skipped_images.txt"

    # 02
    @property
    def original(self) -> Path:
        return self.arch_dir / "models" / "original.pt"

    def support(self, a1: float, a2: float) -> Path:
        return self.arch_dir / "models" / f"support_{support_label(a1, a2)}.pt"

    @property
    def models_csv(self) -> Path:
        return self.arch_dir / "models.csv"

    @property
    def logit_space_csv(self) -> Path:
        return self.arch_dir / "logit_space.csv"

    # 03
    @property
    def precision(self) -> Path:
        return self.arch_dir / "precision.pt"

    def attributions(self, method: str) -> Path:
        return self.arch_dir / "attributions" / f"{method}.pt"

    # 04
    @property
    def consensus(self) -> Path:
        return self.arch_dir / "consensus.pt"

    @property
    def hulls(self) -> Path:
        return self.arch_dir / "hulls.pt"

    @property
    def rc_csv(self) -> Path:
        return self.arch_dir / "rc.csv"

    @property
    def ground_truth_csv(self) -> Path:
        return self.arch_dir / "ground_truth.csv"

    # 05
    @property
    def rs_csv(self) -> Path:
        return self.arch_dir / "rs.csv"

    @property
    def eval_logits(self) -> Path:
        return self.arch_dir / "eval_logits.pt"

    # 07
    def control(self, i: int) -> Path:
        return self.arch_dir / "models" / f"control_{i + 1}.pt"

    @property
    def control_maps(self) -> Path:
        return self.arch_dir / "control_maps.pt"

    @property
    def controls_csv(self) -> Path:
        return self.arch_dir / "controls.csv"

    @property
    def sanity_csv(self) -> Path:
        return self.arch_dir / "sanity.csv"

    # 06
    @property
    def figure_dir(self) -> Path:
        return self.cfg.figure_dir

    @property
    def run_record(self) -> Path:
        return self.figure_dir / "RUN.json"

    # figures that notebooks 02 and 07 draw (06 draws the logit space again, from its CSV)
    @property
    def logit_space_figure(self) -> Path:
        return self.figure_dir / f"fig1_logit_space_{self.cfg.arch}.png"

    @property
    def controls_figure(self) -> Path:
        return self.figure_dir / f"fig_controls_{self.cfg.arch}.png"

    @property
    def sanity_figure(self) -> Path:
        return self.figure_dir / f"fig_sanity_{self.cfg.arch}.png"

    def results(self, controls: bool) -> list[Path]:
        """The files this configuration's stages make for its architecture (with notebook 07's
        where `controls`), whether or not they are there: what a run could read back."""
        cfg = self.cfg
        made = [self.original, *(self.support(a1, a2) for a1, a2 in cfg.support_alphas), self.models_csv]
        made += [self.logit_space_csv, self.precision, *(self.attributions(m) for m in cfg.methods)]
        made += [self.consensus, self.hulls, self.rc_csv, self.ground_truth_csv, self.rs_csv, self.eval_logits]
        if controls:
            made += [*(self.control(i) for i in range(len(cfg.support_alphas))), self.control_maps]
            made += [self.controls_csv, self.sanity_csv]
        return made

    # the run as a whole
    @property
    def lock(self) -> Path:
        return lock_path(self.run_dir)

    @property
    def holder(self) -> Path:
        return holder_path(self.run_dir)

    def finished_archs(self) -> list[str]:
        return sorted(p.parent.name for p in self.run_dir.glob("*/rs.csv"))


def write_json(obj: dict, path: Path) -> None:
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


__all__ = [
    "RunFiles",
    "atomic_write",
    "cached",
    "check",
    "check_key",
    "difference",
    "fingerprint",
    "holding",
    "load",
    "load_input",
    "load_own",
    "normalise",
    "read_csv",
    "save",
    "split_fingerprint",
    "stamp",
    "strip_key",
    "write_csv",
    "write_json",
    "write_text",
]
