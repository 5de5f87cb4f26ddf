"""RUN.json: how a run was made (code, versions, machine, precision, settings, time), written
beside its tables so that every number in figures/<run>/ can be traced to what produced it."""
from __future__ import annotations

import dataclasses
import json
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version

import torch

from . import runfiles
from .config import ROOT, RunConfig
from .models import describe_device, pick_device
from .stages import RunResults

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


def run_record(cfg: RunConfig, results: RunResults) -> dict:
    """The record of a run; `seconds` per notebook is added by the runner that timed them."""
    status = _git("status", "--porcelain", "--", ".", ":(exclude)figures")  # results are not code
    params = {k: v for k, v in json.loads(json.dumps(dataclasses.asdict(cfg), default=str)).items()
              if k not in ("arch", "runs_dir", "figures_dir")}
    return {
        "run": cfg.name,
        "commit": _git("rev-parse", "HEAD"),
        "dirty": None if status is None else bool(status),
        "versions": {"python": platform.python_version(), **{p: _version(p) for p in PACKAGES}},
        "device": describe_device(pick_device(cfg.device)),
        "threads": torch.get_num_threads(),
        "archs": results.archs,
        "precision": {a: s["rc"]["inputs"]["precision"] for a, s in results.stamps.items()},
        "parameters": params,
        "keys": {a: {k: st["key"] for k, st in s.items()} for a, s in results.stamps.items()},
    }


def write_run_record(cfg: RunConfig, results: RunResults, seconds: dict[str, float] | None = None) -> dict:
    record = run_record(cfg, results)
    if seconds is not None:
        record["seconds"] = {k: round(v, 1) for k, v in seconds.items()}
        record["total_seconds"] = round(sum(seconds.values()), 1)
    runfiles.write_json(record, runfiles.RunFiles(cfg).run_record)
    return record
