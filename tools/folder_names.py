"""The summary tools key their rows by each folder's name (a run's or a sweep's): two folders of
one name given together would share rows, one silently replacing the other."""

from __future__ import annotations

import sys
from pathlib import Path


def refuse_same_names(folders, kind: str = "runs") -> None:
    """Exit with one line where two of `folders` have one name."""
    names = [Path(f).name for f in folders]
    if len(set(names)) != len(names):
        given = ", ".join(map(str, folders))
        sys.exit(f"error: two {kind} of one name among {given}: their rows would be one; give each once")
