"""Papermill parameter sweeps, run in parallel on Dask distributed.

    python -m gadlib.sweep alphas-q -p alphas='[[2, 4], [2, 4, 6, 8]]' -p consensus_q='[0.3, 0.5, 0.7]'
    python -m gadlib.sweep alphas-q --grid sweep.yaml --scheduler tcp://host:8786 --runs-dir /shared/gad

Every combination of the grid's values is a point. Each point runs the notebook chain
(`gadlib.reproduce.run_chain`) into runs/<sweep>/<point>/ and figures/<sweep>/<point>/.

Points that train the same supports (they differ only in settings used after support training,
consensus_q say) form a group. The group's first point runs first; each other point then starts
from a copy of its run folder (hard links, no extra disk), and the cache keys let it reuse the
supports, and the attributions where those settings agree too, instead of computing them again.

figures/<sweep>/points.csv lists every point: its parameters, group, status, tables key, seconds
and error. Running the same sweep again skips the points that finished, unless their RUN.json
was made under other definitions (`record.definitions`: a code change that alters what a
stage computes bumps one), which run again; `--rerun` runs every point again (a finished point
that runs again stays listed as it was until its new result lands); a failed point is
recorded with its one-line error and the others go on. A worker that dies (killed, out of
memory) has its point run again on another worker by Dask.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

from .config import (
    ARCHS,
    LIST_SETTINGS,
    SETTINGS,
    RunConfig,
    absolute_paths,
    figures_root,
    parse_value,
    runs_root,
    unknown_settings,
    yaml_problem,
)
from .errors import GADInputError, stopped_by_user
from .runfiles import FAMILY_FIELDS, atomic_write
from .runfolder import holder_path

POINT_COLUMNS = ["point", "group", "params", "status", "key", "seconds", "error"]
# A point that finished earlier, outside the grid being run, whose run folder is not here (a fresh
# clone, a lost runs/): its figures and key are whole, so tools/seed_checks.py reads it as done,
# but notebook 08, which pools every point's per-image rows from its run folder, cannot.
NOT_HERE = "run folder not on this machine"


def effects_paths(folder: Path, hull_rule: str) -> dict[str, Path]:
    """What notebook 08 writes in figures/<sweep>/ for one hull rule: the effects' table (csv, md)
    and figure (png); hull_rule "*" gives the patterns of every rule's."""
    return {
        "csv": folder / f"effects_{hull_rule}.csv",
        "md": folder / f"effects_{hull_rule}.md",
        "png": folder / f"sweep_effects_{hull_rule}.png",
    }


EFFECTS_FILES = tuple(p.name for p in effects_paths(Path(), "*").values())


def run_folder_whole(run_dir: Path, archs: list[str]) -> bool:
    """A point's run folder as a finished chain leaves it: no holder file (a running or killed run's:
    runfolder.holding removes it otherwise) and every architecture's per-image rows, which notebook
    08 pools. A folder that is not whole counts as not on this machine."""
    rows = [run_dir / arch / name for arch in archs for name in ("rc.csv", "rs.csv")]
    return run_dir.is_dir() and not holder_path(run_dir).exists() and all(p.is_file() for p in rows)


def points_not_here(points: pd.DataFrame) -> list[str]:
    """The points of an index (read_points) that finished on a machine other than this one."""
    return points.loc[points["status"] == NOT_HERE, "point"].tolist()


# ---------------------------------------------------------------- the grid
def parse_grid(items: list[str], grid_file: str | None = None) -> dict[str, list]:
    """{name: [values]} from `-p name=[v1, v2]` items (Python or YAML lists; one value is a list
    of one) and an optional YAML file of `name: [values]`; -p wins over the file."""
    import yaml

    grid: dict = {}
    if grid_file:
        path = Path(grid_file)
        if not path.is_file():
            raise GADInputError(f"grid file {path} does not exist: give a YAML file of `name: [values]` lines")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise GADInputError(f"grid file {path} is not valid YAML ({yaml_problem(err)}): fix it") from None
        if not isinstance(loaded, dict):
            raise GADInputError(f"grid file {path} is not a mapping of `name: [values]`")
        grid.update(loaded)
    for item in items:
        name, eq, text = item.partition("=")
        if not eq or not name:
            raise GADInputError(f"-p {item!r}: write NAME=[VALUES], e.g. -p consensus_q='[0.3, 0.5]'")
        grid[name] = parse_value(item, "-p consensus_q='[0.3, 0.5]'")
    for name in list(grid):
        if name not in SETTINGS:
            raise GADInputError(unknown_settings([name], "sweep setting"))
        if name in ("run_name", "runs_dir", "figures_dir"):
            raise GADInputError(f"{name!r} cannot be swept: each point's run name and folders are the sweep's")
        if name == "arch":  # each notebook's arch comes from --archs: swept, it would be overwritten
            raise GADInputError("'arch' is not swept: every point runs each architecture of --archs")
        values = grid[name] if isinstance(grid[name], list) else [grid[name]]
        if not values:
            raise GADInputError(f"{name!r} has no values in the grid")
        scalars = all(v is not None and not isinstance(v, list) for v in values)  # alphas=[2, 4]: no list
        if name in LIST_SETTINGS and scalars:
            raise GADInputError(
                f"{name} takes a list, so each of its sweep values is one: -p {name}='[{values}]' runs one point "
                f"with {name} {values}, -p {name}='[[...], [...]]' one point per list"
            )
        grid[name] = values
    if not grid:
        raise GADInputError("the grid is empty: give -p NAME=[VALUES] or --grid FILE")
    return grid


def check_points(grid: dict[str, list], base: dict) -> None:
    """Every point's settings as its chain would build them, checked (values and ranges, not the
    data folder: the points' own preflights do that); the first bad one is a GADInputError."""
    from .reproduce import notebook_params

    def build(values: dict) -> None:
        RunConfig.from_params(notebook_params(values))

    build(base)  # the settings every point shares, named as such
    for params in points_of(grid):
        try:
            build({**base, **params})
        except GADInputError as err:
            raise GADInputError(f"point {point_name(params)}: {err}") from None


def points_of(grid: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values, in the grid's order."""
    return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]


# values whose readable form keeps them apart: non-negative numbers and plain words, or flat lists of them
_PLAIN = r"(\d[\d.]*(e-\d+)?|\"(?!(true|false|null)\")[A-Za-z_][A-Za-z0-9._]*\")"  # 1e+20 would read 1e-20
_READABLE = re.compile(rf"{_PLAIN}|\[{_PLAIN}(, {_PLAIN})*\]|true|false|null")


def point_name(params: dict) -> str:
    """A readable folder name, e.g. alphas-2-4__consensus_q-0.3. A value whose readable form could
    be another's (train_lr 1e+20 and 1e-20 both read "1e-20") also carries a short hash of
    itself, so two values of one setting never share a folder (a list and a scalar may: no
    setting takes both)."""

    def part(value) -> str:
        text = json.dumps(value)
        readable = re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-")
        return readable if _READABLE.fullmatch(text) else f"{readable}~{hashlib.sha1(text.encode()).hexdigest()[:6]}"

    return "__".join(f"{k}-{part(v)}" for k, v in params.items())


def group_of(params: dict) -> str:
    """Points of one group train the same supports: their settings of FAMILY_FIELDS agree."""
    return point_name({k: v for k, v in params.items() if k in FAMILY_FIELDS}) or "all"


# ---------------------------------------------------------------- one point (runs on a worker)
def run_point(spec: dict, leader: dict | None = None) -> dict:
    """Run one point's chain; never raises for a point's own failure (that is its status).
    spec: sweep, point, params, base (dataset, profile, ...), archs, controls, runs_dir,
    figures_dir, threads. leader: the result of the group's first point, whose run folder this
    point starts from."""
    from . import reproduce

    started = time.time()
    run_dir = Path(spec["runs_dir"]) / spec["sweep"] / spec["point"]
    _bind_device(spec)
    values = {
        **spec["base"],
        **spec["params"],
        "run_name": f"{spec['sweep']}/{spec['point']}",
        "runs_dir": spec["runs_dir"],
        "figures_dir": spec["figures_dir"],
    }
    result = {"point": spec["point"], "run_dir": str(run_dir), "status": "failed", "key": "", "error": ""}
    log_lines = []
    try:
        if leader and leader.get("status") == "done" and not run_dir.exists():
            _link_tree(Path(leader["run_dir"]), run_dir)
        cfg = reproduce.run_chain(
            reproduce.notebook_params(values), spec["archs"], log=log_lines.append, with_controls=spec["controls"]
        )
        record = json.loads((cfg.figure_dir / "RUN.json").read_text())
        result.update(status="done", key=record.get("tables_key", ""))
    except GADInputError as err:
        result["error"] = str(err)
    except reproduce.NotebookFailed as err:
        result["error"] = err.line
    except Exception as err:  # anything else is still this point's failure, not the sweep's
        result["error"] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    result["seconds"] = round(time.time() - started, 1)
    result["log"] = log_lines
    return result


def _link_tree(src: Path, dst: Path) -> None:
    """Copy a finished run folder as hard links (a copy where links are not possible), leaving
    out what belongs to that run only: its executed notebooks, lock and temporary files."""

    def link(a, b):
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    tmp = dst.with_name(f".{dst.name}.linking")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(
        src, tmp, copy_function=link, ignore=shutil.ignore_patterns("executed", ".lock", "RUNNING", ".*.tmp")
    )
    # Not whole until its own chain has run: it holds the leader's rows, and a point killed
    # before its chain took the folder would otherwise read as finished (run_folder_whole). The
    # chain's holder file replaces this one, and goes once the chain ends.
    holder_path(tmp).write_text(f"linked from {src}, its own chain not run yet\n")
    tmp.rename(dst)  # all or nothing: a point killed while linking starts from scratch


def _bind_device(spec: dict) -> None:
    """One GPU per worker (by the worker's number) and the CPU threads shared out, set before
    the point's notebook kernels start (they inherit the environment)."""
    try:
        from distributed import get_worker

        index = int(str(get_worker().name).rsplit("-", 1)[-1])
    except (ImportError, ValueError):  # not on a Dask worker, or a worker named by the user
        index = 0
    if spec.get("gpus"):  # among the GPUs this machine lets the sweep see
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = visible.split(",") if visible else [str(i) for i in range(spec["gpus"])]
        os.environ["CUDA_VISIBLE_DEVICES"] = ids[index % len(ids)]
    if spec.get("threads"):  # Dask's nanny sets all three to 1, and torch reads MKL's over OpenMP's
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(spec["threads"])
        # this process's torch read the nanny's 1 when it was imported; the point's RUN.json,
        # written here, records this count as the one its kernels ran with
        import torch

        torch.set_num_threads(spec["threads"])


# ---------------------------------------------------------------- the sweep (runs on the client)
def read_points(path: Path) -> pd.DataFrame:
    """A sweep's points.csv (its first line, the shared settings, left out)."""
    if path.is_file():
        skip = 1 if read_context(path) is not None else 0
        return pd.read_csv(path, dtype={"error": str, "key": str}, keep_default_na=False, skiprows=skip)
    return pd.DataFrame(columns=POINT_COLUMNS)


def read_context(path: Path) -> str | None:
    """The settings every point of the sweep shares (dataset, profile, archs, controls), from
    points.csv's first line."""
    if not path.is_file():
        return None
    first = path.read_text().splitlines()[0]
    return first[len("# sweep ") :] if first.startswith("# sweep ") else None


def _write_points(rows: dict[str, dict], path: Path, context: str) -> None:
    frame = pd.DataFrame(list(rows.values()), columns=POINT_COLUMNS)
    text = f"# sweep {context}\n" + frame.to_csv(index=False)
    atomic_write(path, lambda f: f.write(text.encode()))


def local_cluster(workers: int | None = None):
    """Dask's LocalCluster sized to this machine: one worker per GPU, or one per CPU core, one
    thread each; each worker's kernels get its share of the cores. (A point spends much of its
    time starting kernels and reading files, so points side by side keep the cores busier than
    one point with every core.)"""
    from distributed import LocalCluster

    try:
        import torch

        gpus = torch.cuda.device_count()
    except ImportError:
        gpus = 0
    # the cores this process may use (a container's or taskset's share, where the OS says), not the host's
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    n = workers or gpus or cores
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0")
    return cluster, gpus, max(1, cores // n)


def run_sweep(
    name: str,
    grid: dict[str, list],
    base: dict,
    archs: list[str],
    controls: bool = False,
    scheduler: str | None = None,
    workers: int | None = None,
    runs_dir: str | None = None,
    figures_dir: str | None = None,
    log=print,
    rerun: bool = False,
) -> pd.DataFrame:
    """Run every point of `grid` on Dask (a LocalCluster, or the scheduler at `scheduler`) and
    return figures/<name>/points.csv's rows. One process at a time per sweep: a second one
    would rewrite points.csv over the first's rows. `rerun`: run the finished points again too
    (each chain's cache keys reuse what did not change); without it, points whose RUN.json was
    made under other definitions (`record.definitions`) run again anyway."""
    from filelock import FileLock, Timeout

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise GADInputError(f"sweep name {name!r}: use letters, digits, '.', '_' and '-'")
    folder = figures_root(figures_dir).resolve() / name
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise GADInputError(
            f"sweep {name!r} is running in another process (its index is {folder / 'points.csv'}): "
            "wait for it, or give this sweep another name"
        ) from None
    try:
        return _sweep(name, grid, base, archs, controls, scheduler, workers, runs_dir, figures_dir, log, rerun)
    finally:
        lock.release()


def _point_record(record_path: Path) -> tuple[dict | None, str | None]:
    """A point's RUN.json (None if missing or unreadable), and None if it was made under the
    current definitions, else why not."""
    from .record import other_definitions  # imports torch: only once a sweep runs or is read

    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return None, f"{record_path} is missing or unreadable"
    return record, other_definitions(record)


def other_code(record_path: Path) -> str | None:
    """None if the point's RUN.json was made under the current definitions, else why not."""
    return _point_record(record_path)[1]


def listed_record(index: Path, point: str, key: str) -> tuple[dict | None, str | None]:
    """A finished point's RUN.json and None; or None and why it is not the run the sweep's `index`
    lists for `point` under tables key `key`: one of other code, or of a run of the point's name
    made since with other settings. Pooled, its rows would count under the point's values."""
    path = index.parent / point / "RUN.json"
    record, other = _point_record(path)
    if other is not None:
        cluster = "" if record is None else "; a Dask cluster's workers must run this gadlib too"
        return None, f"point {point} is not of the current code ({other}{cluster})"
    if record.get("tables_key") != key:
        return None, f"{path} is not the run {index} lists for point {point} (another run wrote its folder since)"
    return record, None


def _sweep(name, grid, base, archs, controls, scheduler, workers, runs_dir, figures_dir, log, rerun) -> pd.DataFrame:
    from distributed import Client, as_completed
    from tqdm.auto import tqdm

    runs, figures = runs_root(runs_dir).resolve(), figures_root(figures_dir).resolve()
    index_path = figures / name / "points.csv"
    # the profile is settled here, not by each worker's environment (a cluster's workers have their own)
    base = {**base, "profile": base.get("profile") or os.environ.get("GAD_PROFILE") or "default"}
    base = absolute_paths(base)  # here, not on a worker, whose folder may be another
    context = json.dumps({"base": base, "archs": archs, "controls": controls}, sort_keys=True)
    points = points_of(grid)  # a point with a bad setting fails in its own preflight, in seconds
    names = [point_name(p) for p in points]
    if len(set(names)) < len(names):
        raise GADInputError(f"two points of the grid get the same folder name ({names}): give distinct values")
    # earlier points stay in the index, also those of another grid of the same sweep
    rows = {r["point"]: {c: r.get(c, "") for c in POINT_COLUMNS} for r in read_points(index_path).to_dict("records")}
    earlier_context = read_context(index_path)

    def now(row: dict) -> str:
        """What a point that finished earlier is now: done (its run folder here and whole, the
        same settings and code), NOT_HERE (its figures and key whole, its run folder elsewhere),
        or stale."""
        if earlier_context != context:  # other base settings (or unknown ones): nothing earlier counts as finished
            return "stale (other base settings)"
        if other := other_code(figures / name / row["point"] / "RUN.json"):  # else pooled with fresh points
            return f"stale (other code: {other})"
        return "done" if run_folder_whole(runs / name / row["point"], archs) else NOT_HERE

    for row in rows.values():  # its key stays, the key of the figures it left
        if row["status"] in ("done", NOT_HERE):
            row["status"] = now(row)
    todo, kept = [], set()
    for params, point in zip(points, names):
        old = rows.get(point)
        # two settings can clean to one folder name: the same params too
        same = old is not None and old["params"] == json.dumps(params)
        if rerun or not same or old["status"] != "done":
            if same and old["status"] in ("done", NOT_HERE):
                # its finished row (status, key, seconds) stays listed until the new result lands, so
                # a sweep stopped meanwhile loses nothing: its tables are stamp-checked when read
                kept.add(point)
                old["group"] = group_of(params)  # as this code groups it
            else:
                fresh = {"point": point, "group": group_of(params), "params": json.dumps(params), "status": "queued"}
                rows[point] = {c: fresh.get(c, "") for c in POINT_COLUMNS}
            todo.append((point, params))
    _write_points(rows, index_path, context)
    again = f"; {len(kept)} of them run again, listed as they were until their new results land" if kept else ""
    finished = len(points) - len(todo) + len(kept)
    log(f"sweep {name}: {len(points)} points, {finished} finished earlier{again}; index {index_path}")
    if not todo:
        return _current(rows, names)

    cluster, gpus, threads = (None, 0, None) if scheduler else local_cluster(workers)
    try:
        try:
            client = Client(scheduler or cluster)
        except (OSError, TimeoutError) as err:  # a scheduler address that answers nothing
            raise GADInputError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None
        with client:
            log(f"Dask dashboard: {client.dashboard_link}")

            def submit(point, params, leader):
                spec = {
                    "sweep": name,
                    "point": point,
                    "params": absolute_paths(params),
                    "base": base,
                    "archs": archs,
                    "controls": controls,
                    "runs_dir": str(runs),
                    "figures_dir": str(figures),
                    "gpus": gpus,
                    "threads": threads,
                }
                if point not in kept:
                    rows[point]["status"] = "submitted"
                return client.submit(run_point, spec, leader, key=f"{name}/{point}", pure=False)

            # Per group: start from a point that finished earlier, or run one point first and
            # hand its result (plain data, not a Dask dependency) to the rest once it is done.
            waiting: dict[str, list] = {}
            running = as_completed()
            for point, params in todo:
                group = rows[point]["group"]
                # a row still "done" has its run folder here (the checks above relabelled the rest),
                # unless it runs again now (--rerun): its folder is about to be rewritten
                done = next(
                    (p for p, r in rows.items() if r["group"] == group and r["status"] == "done" and p not in kept),
                    None,
                )
                if done:
                    running.add(submit(point, params, {"status": "done", "run_dir": str(runs / name / done)}))
                elif group in waiting:
                    waiting[group].append((point, params))
                else:
                    waiting[group] = []
                    running.add(submit(point, params, None))
            _write_points(rows, index_path, context)
            bar = tqdm(total=len(todo), desc=f"sweep {name}", unit="point")
            for future in running:
                point = future.key.split("/", 1)[1]
                try:
                    result = future.result()
                except Exception as err:  # its worker died more often than Dask allows
                    result = {"point": point, "status": "failed", "error": f"{type(err).__name__}: {err}"}
                rows[point].update({k: result.get(k, "") for k in ("status", "key", "seconds", "error")})
                followers = waiting.pop(rows[point]["group"], [])
                if result["status"] == "done":
                    for other in followers:
                        running.add(submit(*other, result))
                elif followers:  # the next point of the group goes first in its place
                    waiting[rows[point]["group"]] = followers[1:]
                    running.add(submit(*followers[0], None))
                _write_points(rows, index_path, context)
                bar.update()
                log(
                    f"{point}: {result['status']} in {result.get('seconds', 0):.0f} s"
                    + (result["error"] and f": {result['error']}")
                )
                for line in result.get("log", []):  # its notebooks' warnings (a classifier near chance, say)
                    if line.strip().startswith("warning:"):
                        log(f"  {point}: {line.strip()}")
            bar.close()
    finally:  # also on Ctrl-C: the workers stop; points.csv says which points finished
        if cluster is not None:
            cluster.close()
    return _current(rows, names)


def _current(rows: dict, names: list[str]) -> pd.DataFrame:
    """The rows of this grid's points, in the grid's order."""
    return pd.DataFrame([rows[n] for n in names], columns=POINT_COLUMNS)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", help="the sweep's name: runs/<name>/ and figures/<name>/")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=[VALUES]", help="a swept setting")
    ap.add_argument("--grid", help="YAML file of `name: [values]`")
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--archs", nargs="+", default=list(ARCHS), choices=ARCHS)
    ap.add_argument("--controls", action="store_true", help="run notebook 07 at every point too")
    ap.add_argument(
        "--rerun",
        action="store_true",
        help="run the finished points again too, after a code change (their cached stages are reused where "
        "unchanged); points made under other definitions run again without it",
    )
    ap.add_argument("--scheduler", help="address of a running Dask scheduler (default: a LocalCluster here)")
    ap.add_argument("--workers", type=int, help="LocalCluster workers (default: one per GPU, or per core)")
    ap.add_argument("--runs-dir", help="where runs/<name>/ goes (a shared filesystem for a cluster)")
    ap.add_argument("--figures-dir", help="where figures/<name>/ goes")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    base = {"dataset": args.dataset}
    if args.data_dir:
        base["data_dir"] = args.data_dir
    if args.profile:
        base["profile"] = args.profile
    try:
        grid = parse_grid(args.param, args.grid)
        check_points(grid, base)  # a setting out of range is answered before any cluster starts
        table = run_sweep(
            args.name,
            grid,
            base,
            args.archs,
            args.controls,
            args.scheduler,
            args.workers,
            args.runs_dir,
            args.figures_dir,
            rerun=args.rerun,
        )
    except GADInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the cluster closed in _sweep's finally block, its workers with it
        index = figures_root(args.figures_dir) / args.name / "points.csv"
        return stopped_by_user(f"{index} lists the points that finished; the same command runs the rest")
    failed = table[table["status"] != "done"]
    print(f"{len(table) - len(failed)} of {len(table)} points done")
    folder = figures_root(args.figures_dir) / args.name
    absent = len(failed) < len(table) and points_not_here(read_points(folder / "points.csv"))
    if absent:
        # a grid of new points on a machine without the earlier run folders: not an error, but the
        # effects of the earlier points alone no longer describe the sweep its index lists
        earlier = [p for pattern in EFFECTS_FILES for p in sorted(folder.glob(pattern))]
        for path in earlier:
            path.unlink()
        removed = f"; its earlier effects, without the new points, removed: {', '.join(p.name for p in earlier)}"
        print(
            f"notebook 08 not run: the run folders of the earlier points {', '.join(absent)} are not on this "
            "machine (or not whole), and its effects would pool the others only (run the sweep with a grid "
            "holding them to make it)" + (removed if earlier else "")
        )
    code = 1 if len(failed) else 0
    if len(failed) < len(table) and not absent:
        try:
            summarise(args.name, args.runs_dir, args.figures_dir)
        except GADInputError as err:
            print(f"error: notebook 08: {err}", file=sys.stderr)
            code = 2
    from .sweep_effects import remove_stale_effects  # effects of other points than those now done: gone

    for line in remove_stale_effects(folder):
        print(line)
    return code


def summarise(name: str, runs_dir=None, figures_dir=None) -> None:
    """Notebook 08 on the sweep: runs/<sweep>/08_sweep.ipynb, figures/<sweep>/effects_*.md and
    sweep_effects_*.png."""
    import papermill as pm

    from .kernels import WarmKernel
    from .reproduce import KERNEL_ARGUMENTS, NOTEBOOK_DIR
    from .sweep_effects import sweep_dirs

    runs, figures = (d.resolve() for d in sweep_dirs(name, runs_dir, figures_dir))  # the kernel runs in notebooks/
    points = read_points(figures / "points.csv")
    rules = next(  # top_q where the points computed it, else their first hull rule
        (
            json.loads((figures / p / "RUN.json").read_text())["parameters"]["hull_rules"]
            for p in points.loc[points["status"] == "done", "point"]
            if (figures / p / "RUN.json").is_file()
        ),
        ["top_q"],
    )
    rule = "top_q" if "top_q" in rules else rules[0]
    # the notebook's kernel reads the sweep where this command wrote it
    parameters = {"sweep": name, "hull_rule": rule, "runs_dir": str(runs.parent), "figures_dir": str(figures.parent)}
    kernel = WarmKernel(NOTEBOOK_DIR, KERNEL_ARGUMENTS)  # the runner's kernels: shut down without a false alarm
    try:
        pm.execute_notebook(
            NOTEBOOK_DIR / "08_sweep.ipynb",
            runs / "08_sweep.ipynb",
            parameters=parameters,
            cwd=str(NOTEBOOK_DIR),
            progress_bar=False,
            km=kernel.wait(),
        )
    except pm.PapermillExecutionError as err:  # its own one-line message, not the kernel's traceback
        raise GADInputError(f"{err.ename}: {err.evalue} (executed notebook: {runs / '08_sweep.ipynb'})") from None
    finally:
        kernel.close()
    made = effects_paths(figures, rule)
    print(f"notebook 08: {made['png']} and {made['md'].name} (executed: {runs}/08_sweep.ipynb)")


if __name__ == "__main__":
    sys.exit(main())
