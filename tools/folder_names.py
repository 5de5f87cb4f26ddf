"""Labels for the folders given to one summary (runs' or sweeps'): their rows are keyed by these,
so two folders must never share one (one's rows would silently replace the other's)."""

from __future__ import annotations

import sys
from pathlib import Path


def labels(folders, kind: str = "runs") -> list[str]:
    """Each folder's name, or where another given folder ends in the same name, as few of its
    path's last parts as set it apart (two sweeps' `seed-0` read `seeds/seed-0` and
    `seeds-birds/seed-0`). Exits with one line where one folder is given twice."""
    paths = [Path(f) for f in folders]
    resolved = [p.resolve() for p in paths]
    if (twice := next((p for p, r in zip(paths, resolved) if resolved.count(r) > 1), None)) is not None:
        sys.exit(f"error: {twice} is given twice among the {kind}: its rows would count twice; give it once")

    def suffix(p: Path, k: int) -> str:
        return Path(*p.parts[-k:]).as_posix()

    longest = max((len(p.parts) for p in paths), default=0)

    def label(p: Path) -> str:
        others = [q for q in paths if q is not p]
        apart = (k for k in range(1, longest + 1) if all(suffix(p, k) != suffix(q, k) for q in others))
        return suffix(p, next(apart, longest))

    return [label(p) for p in paths]
