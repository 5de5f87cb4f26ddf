"""Cache a stage's output on disk under a key, written atomically.

A file is reused only when its stored key equals the key of the current settings; otherwise it
is recomputed. Writes go to a temporary file that is renamed into place, so an interrupted run
never leaves a half-written result that a later run would trust.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch


def save_atomic(obj: Any, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_if_current(path: Path, key: str) -> Any | None:
    """The stored value if `path` holds one saved under `key`, else None."""
    path = Path(path)
    if not path.is_file():
        return None
    stored = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(stored, dict) and stored.get("_cache_key") == key:
        return stored["value"]
    return None


def cached(path: Path, key: str, compute: Callable[[], Any]) -> Any:
    value = load_if_current(path, key)
    if value is None:
        value = compute()
        save_atomic({"_cache_key": key, "value": value}, path)
    return value
