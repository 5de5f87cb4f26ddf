"""RUN.json: how a run was made (code, versions, machine, precision, settings, time), written
beside its tables so that every number in figures/<run>/ can be traced to what produced it."""

from __future__ import annotations

import dataclasses
import json
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from . import controls, notices, runfiles, sanity
from .config import ARCHS, ROOT, RunConfig
from .controls import output_files
from .data import DECODER_VERSION
from .errors import GADInputError
from .hulls import REGIONS_VERSION
from .models import describe_device, pick_device
from .report import RunResults, tables_stamp
from .training import TARGETS_VERSION

PACKAGES = ("torch", "torchvision", "captum", "numpy", "scikit-image", "pandas")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


# What a run executes: a change here, uncommitted, makes a run "dirty". Docs, tests and the
# tools that format results afterwards do not.
RESULT_PATHS = ("gadlib", "notebooks", "pyproject.toml")


def definitions() -> dict[str, int]:
    """The version of each definition that changes what a run computes, as the stages' cache keys
    carry them (each is bumped where it is defined). A record made under other versions is of
    other code: a sweep runs such a point again rather than pool it with this code's points (a
    record older than this field counts as other code too, so such a point runs once more)."""
    return {
        "decoder": DECODER_VERSION,
        "targets": TARGETS_VERSION,
        "regions": REGIONS_VERSION,
        "control maps": controls.MAPS_VERSION,
        "control rows": controls.ROWS_VERSION,
        "sanity": sanity.VERSION,
    }


def other_definitions(record: dict) -> str | None:
    """None if `record` (a RUN.json) was made under the current definitions, else what differs,
    for a message ("regions 2, now 3")."""
    made = record.get("definitions") if isinstance(record, dict) else None
    if not isinstance(made, dict):
        return "made before runs recorded their definitions"
    now = definitions()
    changed = [
        f"{name} {made.get(name, 'absent')}, now {value}" for name, value in now.items() if made.get(name) != value
    ]
    return "; ".join(changed) or None


def code_state(paths: tuple[str, ...] = RESULT_PATHS) -> dict:
    """The commit, and whether the code that computes results (`paths`) differs from it (with the
    paths that do). The runner takes this when a run starts, whatever is edited meanwhile."""
    status = _git("status", "--porcelain", "--", *paths)
    edited = [line.split(None, 1)[1] for line in status.splitlines() if line.strip()] if status else []
    return {
        "commit": _git("rev-parse", "HEAD"),
        "dirty": None if status is None else bool(edited),
        "dirty_paths": edited,
    }


def run_record(cfg: RunConfig, results: RunResults, code: dict | None = None) -> dict:
    """The record of a run; `seconds` per notebook is added by the runner that timed them."""
    code = code or code_state()
    params = {
        k: v
        for k, v in json.loads(json.dumps(dataclasses.asdict(cfg), default=str)).items()
        if k not in ("arch", "runs_dir", "figures_dir")
    }
    return {
        "run": cfg.name,
        "commit": code["commit"],
        "dirty": code["dirty"],
        "dirty_paths": code.get("dirty_paths", []),
        "versions": {"python": platform.python_version(), **{p: _version(p) for p in PACKAGES}},
        "device": describe_device(pick_device(cfg.device)),
        "threads": torch.get_num_threads(),
        "archs": results.archs,
        "precision": {a: s["rc"]["inputs"]["precision"] for a, s in results.stamps.items()},
        "parameters": params,
        "keys": {a: {k: st["key"] for k, st in s.items()} for a, s in results.stamps.items()},
        "definitions": definitions(),
        "tables_key": tables_stamp(cfg, results)["key"],
        "controls_keys": controls_keys(cfg, results),
    }


def controls_keys(cfg: RunConfig, results: RunResults) -> dict[str, str]:
    """{arch: key of its controls rows} for the architectures whose controls.csv was made under
    this run's settings and from the same models (a file left by another run is not listed)."""
    out = {}
    for arch in results.archs:
        _, st = runfiles.read_csv(runfiles.RunFiles(cfg.with_arch(arch)).controls_csv, nrows=0)
        expected = runfiles.stamp(
            "controls",
            cfg.with_arch(arch),
            runfiles.CONTROL_FIELDS,
            models=results.stamps[arch]["rc"]["inputs"]["models"],
            complexity=results.stamps[arch]["rc"]["key"],  # of the hulls the tables are of
        )
        try:
            runfiles.check(Path("controls.csv"), st, expected, partial=True)
        except GADInputError:
            continue
        out[arch] = st["key"]
    return out


def read_back(cfg: RunConfig, archs: list[str], controls: list[str], began: float) -> list[str]:
    """The result files of this run's settings (the data, and each of `archs`' models, maps, hulls
    and rows; notebook 07's for the architectures in `controls`) stamped before the run `began`
    (`runfolder.run_started`, the file system's clock): made by an earlier run of the folder, or
    by the first point of a sweep group, whose files a later point starts from as hard links (a
    link keeps the file's stamp). Read back, they take seconds where making them took minutes."""
    files = runfiles.RunFiles(cfg)
    found = [files.data] + [p for a in archs for p in files.arch(a).results(controls=a in controls)]
    return sorted(p.relative_to(cfg.run_dir).as_posix() for p in found if p.is_file() and p.stat().st_mtime < began)


def write_run_record(
    cfg: RunConfig,
    results: RunResults,
    seconds: dict[str, float] | None = None,
    code: dict | None = None,
    read_back: list[str] | None = None,
) -> dict:
    """RUN.json; `seconds` per notebook and the files the run `read_back` (`read_back()`) come
    from the runner: a record written by notebook 06 alone has neither."""
    record = run_record(cfg, results, code)
    if read_back is not None:
        record["read_back"] = read_back
    gone = [  # notebook 07's files that this run's record does not list are another run's
        path
        for arch in ARCHS
        if arch not in record["controls_keys"]
        for path in output_files(cfg.with_arch(arch))
        if path.exists()
    ]
    for path in gone:
        path.unlink()
    if gone:  # said: they may be of this run's models, made before the rows' key named the hulls they score
        notices.warn(
            f"notebook 07's {len(gone)} table(s) and figure(s) in {cfg.figure_dir} were removed: not made from "
            "this run's controls rows (another run's, or made before the rows' key named the hulls they score); "
            "run notebook 07 again (make reproduce without --no-controls) to make them"
        )
    if seconds is not None:
        record["seconds"] = {k: round(v, 1) for k, v in seconds.items()}
        record["total_seconds"] = round(sum(seconds.values()), 1)
    runfiles.write_json(record, runfiles.RunFiles(cfg).run_record)
    return record
