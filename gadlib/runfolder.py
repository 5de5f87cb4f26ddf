"""The run folder as a whole: atomic writes, and the lock that one run holds on its folder.

Nothing here imports torch or pandas, so that the runner takes the lock (or refuses a second
run into a held folder) in a fraction of a second, before it imports anything heavy.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from .config import RunConfig
from .errors import GADInputError

# A killed run's kernel may live on for a second: only temporary files older than this go.
LEFTOVER_AGE_S = 60


def lock_path(run_dir: Path) -> Path:
    return run_dir / ".lock"


def holder_path(run_dir: Path) -> Path:
    """Who holds the folder (pid and start time), for the message a second run gets."""
    return run_dir / "RUNNING"


def _umask() -> int:
    try:  # Linux: read it without changing it
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def atomic_write(path: Path, write) -> None:
    """Call write(binary file) on a temporary file beside `path`, then rename it into place: a
    reader (or a killed run) never sees a half-written `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private; the file gets the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def run_started(run_dir: Path) -> float:
    """When the run holding `run_dir` took it, by the file system's clock (its RUNNING file's
    stamp): the clock of the stamps of the files it writes, which a Dask worker's own clock may
    not be."""
    try:
        return holder_path(run_dir).stat().st_mtime
    except OSError:  # the file removed by hand: the process's clock, as the best left
        return time.time()


@contextmanager
def holding(cfg: RunConfig) -> Iterator[int]:
    """Hold the run folder for one run. A second run into the same folder stops with one line
    instead of interleaving its writes; the OS frees the lock when the holder dies, even by
    SIGKILL. Yields the number of half-written files (temporary files of atomic writes) that
    a stopped run left and that were removed."""
    run_dir, holder = cfg.run_dir, holder_path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path(run_dir))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        who = holder.read_text().strip() if holder.is_file() else "another process"
        raise GADInputError(
            f"run folder {run_dir} is in use by another run ({who}): wait for it to "
            "finish, or give this run another --run-name"
        ) from None
    try:
        text = f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
        atomic_write(holder, lambda f: f.write(text.encode()))
        now = run_started(run_dir)  # the clock of the leftovers' stamps
        leftovers = [
            p
            for d in (run_dir, cfg.figure_dir)
            if d.is_dir()
            for p in d.rglob(".*.tmp")
            if now - p.stat().st_mtime > LEFTOVER_AGE_S
        ]
        for p in leftovers:
            p.unlink()
        yield len(leftovers)
    finally:
        holder.unlink(missing_ok=True)
        lock.release()
