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
and error. Running the same sweep again skips the points that finished; a failed point is
recorded with its one-line error and the others go on. A worker that dies (killed, out of
memory) has its point run again on another worker by Dask.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

from .config import ARCHS, ROOT, RunConfig
from .errors import GADInputError
from .runfiles import FAMILY_FIELDS, atomic_write

POINT_COLUMNS = ["point", "group", "params", "status", "key", "seconds", "error"]


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
        loaded = yaml.safe_load(path.read_text())
        if not isinstance(loaded, dict):
            raise GADInputError(f"grid file {path} is not a mapping of `name: [values]`")
        grid.update(loaded)
    for item in items:
        name, eq, text = item.partition("=")
        if not eq or not name:
            raise GADInputError(f"-p {item!r}: write NAME=[VALUES], e.g. -p consensus_q='[0.3, 0.5]'")
        try:
            grid[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            grid[name] = yaml.safe_load(text)
    for name in list(grid):
        if name not in RunConfig.__dataclass_fields__ or name in ("run_name", "runs_dir", "figures_dir"):
            raise GADInputError(f"{name!r} cannot be swept: give settings of RunConfig (gadlib/config.py)")
        values = grid[name] if isinstance(grid[name], list) else [grid[name]]
        if not values:
            raise GADInputError(f"{name!r} has no values in the grid")
        grid[name] = values
    if not grid:
        raise GADInputError("the grid is empty: give -p NAME=[VALUES] or --grid FILE")
    return grid


def points_of(grid: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values, in the grid's order."""
    return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]


def point_name(params: dict) -> str:
    """A readable folder name, e.g. alphas-2-4__consensus_q-0.3."""
    return "__".join(f"{k}-" + re.sub(r"[^A-Za-z0-9._]+", "-", json.dumps(v)).strip("-") for k, v in params.items())


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
    if leader and leader.get("status") == "done" and not run_dir.exists():
        _link_tree(Path(leader["run_dir"]), run_dir)
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
    tmp.rename(dst)  # all or nothing: a point killed while linking starts from scratch


def _bind_device(spec: dict) -> None:
    """One GPU per worker (by the worker's number) and the CPU threads shared out, set before
    the point's notebook kernels start (they inherit the environment)."""
    try:
        from distributed import get_worker

        index = int(str(get_worker().name).rsplit("-", 1)[-1])
    except (ImportError, ValueError):  # not on a Dask worker, or a worker named by the user
        index = 0
    if spec.get("gpus"):
        os.environ["CUDA_VISIBLE_DEVICES"] = str(index % spec["gpus"])
    if spec.get("threads"):
        os.environ["OMP_NUM_THREADS"] = str(spec["threads"])


# ---------------------------------------------------------------- the sweep (runs on the client)
def _read_points(path: Path) -> pd.DataFrame:
    if path.is_file():
        return pd.read_csv(path, dtype={"error": str, "key": str}, keep_default_na=False)
    return pd.DataFrame(columns=POINT_COLUMNS)


def _write_points(rows: dict[str, dict], path: Path) -> None:
    frame = pd.DataFrame(list(rows.values()), columns=POINT_COLUMNS)
    atomic_write(path, lambda f: f.write(frame.to_csv(index=False).encode()))


def local_cluster(workers: int | None = None):
    """Dask's LocalCluster sized to this machine: one worker per GPU, or one per two CPU cores
    (at least one), one thread each; each worker's kernels get its share of the cores."""
    from distributed import LocalCluster

    try:
        import torch

        gpus = torch.cuda.device_count()
    except ImportError:
        gpus = 0
    cores = os.cpu_count() or 1
    n = workers or gpus or max(1, cores // 2)
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
) -> pd.DataFrame:
    """Run every point of `grid` on Dask (a LocalCluster, or the scheduler at `scheduler`) and
    return figures/<name>/points.csv's rows."""
    from distributed import Client, as_completed
    from tqdm.auto import tqdm

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise GADInputError(f"sweep name {name!r}: use letters, digits, '.', '_' and '-'")
    runs = Path(runs_dir or os.environ.get("GAD_RUNS_DIR") or ROOT / "runs").resolve()
    figures = Path(figures_dir or os.environ.get("GAD_FIGURES_DIR") or ROOT / "figures").resolve()
    index_path = figures / name / "points.csv"
    points = points_of(grid)  # a point with a bad setting fails in its own preflight, in seconds
    earlier = {r["point"]: r for r in _read_points(index_path).to_dict("records")}
    rows, todo = {}, []
    for params in points:
        point = point_name(params)
        row = {"point": point, "group": group_of(params), "params": json.dumps(params), "status": "queued"}
        old = earlier.get(point)
        if old and old["status"] == "done" and (figures / name / point / "RUN.json").is_file():
            row.update({k: old[k] for k in ("status", "key", "seconds")}, error="")
        else:
            todo.append((point, params))
        rows[point] = {c: row.get(c, "") for c in POINT_COLUMNS}
    _write_points(rows, index_path)
    log(f"sweep {name}: {len(points)} points, {len(points) - len(todo)} finished earlier; index {index_path}")
    if not todo:
        return pd.DataFrame(list(rows.values()), columns=POINT_COLUMNS)

    cluster, gpus, threads = (None, 0, None) if scheduler else local_cluster(workers)
    with Client(scheduler or cluster) as client:
        log(f"Dask dashboard: {client.dashboard_link}")

        def spec(point, params):
            return {
                "sweep": name,
                "point": point,
                "params": params,
                "base": base,
                "archs": archs,
                "controls": controls,
                "runs_dir": str(runs),
                "figures_dir": str(figures),
                "gpus": gpus,
                "threads": threads,
            }

        futures, leaders = [], {}
        for point, params in todo:
            group = rows[point]["group"]
            done_before = next(
                (p for p, r in rows.items() if r["group"] == group and r["status"] == "done"),
                None,
            )
            if done_before:  # a point of this group finished in an earlier run of the sweep
                leader = {"status": "done", "run_dir": str(runs / name / done_before)}
            else:  # the group's first point runs first; the others start from its run folder
                leader = leaders.get(group)
            future = client.submit(run_point, spec(point, params), leader, key=f"{name}/{point}", pure=False)
            if not done_before:
                leaders.setdefault(group, future)
            futures.append(future)
            rows[point]["status"] = "running" if leader is None else "waiting"
        _write_points(rows, index_path)
        bar = tqdm(total=len(futures), desc=f"sweep {name}", unit="point")
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as err:  # the worker died more often than Dask allows
                point = future.key.split("/", 1)[1]
                result = {"point": point, "status": "failed", "error": f"{type(err).__name__}: {err}", "key": ""}
            row = rows[result["point"]]
            row.update({k: result.get(k, "") for k in ("status", "key", "seconds", "error")})
            _write_points(rows, index_path)
            bar.update()
            log(f"{result['point']}: {result['status']} in {result.get('seconds', 0):.0f} s {result['error']}".rstrip())
        bar.close()
    if cluster is not None:
        cluster.close()
    return pd.DataFrame(list(rows.values()), columns=POINT_COLUMNS)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", help="the sweep's name: runs/<name>/ and figures/<name>/")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=[VALUES]", help="a swept setting")
    ap.add_argument("--grid", help="YAML file of `name: [values]`")
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--archs", nargs="+", default=list(ARCHS))
    ap.add_argument("--controls", action="store_true", help="run notebook 07 at every point too")
    ap.add_argument("--scheduler", help="address of a running Dask scheduler (default: a LocalCluster here)")
    ap.add_argument("--workers", type=int, help="LocalCluster workers (default: one per GPU, or per two cores)")
    ap.add_argument("--runs-dir", help="where runs/<name>/ goes (a shared filesystem for a cluster)")
    ap.add_argument("--figures-dir", help="where figures/<name>/ goes")
    args = ap.parse_args(argv)
    base = {"dataset": args.dataset}
    if args.data_dir:
        base["data_dir"] = str(Path(args.data_dir).expanduser().resolve())
    if args.profile:
        base["profile"] = args.profile
    try:
        grid = parse_grid(args.param, args.grid)
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
        )
    except GADInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    failed = table[table["status"] != "done"]
    print(f"{len(table) - len(failed)} of {len(table)} points done")
    return 1 if len(failed) else 0


if __name__ == "__main__":
    sys.exit(main())
