"""Run the notebook chain headless with Papermill: 01 once, 02-05 per architecture, 07 (the
controls) for the first architecture, 06 once.

    python -m gadlib.reproduce --dataset synthetic --profile default --archs resnet18 vgg16
    python -m gadlib.reproduce --dataset folder --data-dir ../shared/data/catsdogs --profile cpu
    python -m gadlib.reproduce -p ig_steps=50 -p alphas='[2, 4]'     # any notebook parameter

Executed notebooks go to <run folder>/executed/, tables and figures to figures/<run>/, and the
record of the run (commit, versions, device, precision, settings, seconds per notebook) to
figures/<run>/RUN.json.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
import warnings
from pathlib import Path

from .config import ARCHS, ROOT, RunConfig, absolute_folder_variables, absolute_paths, parse_value
from .errors import GADInputError, GADWarning, stopped_by_user

NOTEBOOK_DIR = ROOT / "notebooks"
PER_RUN = ("01_data",)
PER_ARCH = ("02_support_training", "03_attributions", "04_complexity", "05_sensitivity")
CONTROLS = ("07_controls",)  # for the first architecture only (its support training is doubled)
FINAL = ("06_figures",)


class _KernelError:
    """A failure outside any cell (nbclient's DeadKernelError, a kernel that did not start), in
    the shape of Papermill's cell error."""

    def __init__(self, err: Exception):
        self.ename, self.exec_count = type(err).__name__, None
        self.evalue = str(err) or type(err).__name__
        self.traceback = err

    def __str__(self) -> str:
        import traceback

        return "".join(traceback.format_exception(self.traceback))


class NotebookFailed(Exception):
    """A notebook of the chain raised: what to print in one line, and the full error."""

    def __init__(self, err, notebook: str, executed: Path):
        self.err = err
        if err.ename == "GADInputError":  # the project's own bad-input error: its message is the line
            self.line = err.evalue
        else:
            where = (
                f"in cell {err.exec_count}"
                if err.exec_count is not None
                else "outside any cell (the kernel stopped; out of memory?)"
            )
            self.line = (
                f"notebook {notebook} failed {where}: {err.ename}: "
                f"{err.evalue.splitlines()[0] if err.evalue else ''} (the rest is in {executed}; "
                "--verbose prints the traceback)"
            )
        super().__init__(self.line)


def preflight(cfg: RunConfig, archs: list[str]) -> None:
    """Every input checked before the first kernel starts: settings, architectures, the data
    folder's layout, that each class has an image that opens, class counts against n_eval, and the
    checkpoint. Raises GADInputError."""
    if twice := next((a for a in archs if archs.count(a) > 1), None):
        raise GADInputError(f"--archs names {twice} twice: name each architecture once")
    for arch in archs:
        cfg.with_arch(arch).validate()
    for what, folder in (("runs", cfg.run_dir), ("figures", cfg.figure_dir)):
        there = next(p for p in (folder, *folder.parents) if p.exists())  # the part that exists already
        if not there.is_dir():
            raise GADInputError(
                f"the {what} folder {folder} cannot be made: {there} is a file; give another {what}_dir "
                f"(or GAD_{what.upper()}_DIR) or run_name"
            )
    from .layouts import check_image_files, check_synthetic_serves_n_eval

    if cfg.device not in ("auto", "cpu"):
        from .models import pick_device  # imports torch: only when a device is named

        pick_device(cfg.device)
    if cfg.dataset == "synthetic":
        check_synthetic_serves_n_eval(cfg)
    else:
        check_image_files(cfg)
    if cfg.checkpoint:
        if len(archs) != 1:  # else one model would run, and be labelled, as each architecture
            raise GADInputError(
                f"checkpoint {cfg.checkpoint} is one trained model but {len(archs)} architectures were asked "
                f"for ({', '.join(archs)}): give its own with --archs (make: ARCH=...)"
            )
        from .models import load_classifier  # imports torch: only when there is a checkpoint to check

        load_classifier(cfg.checkpoint, archs[0], cfg.image_size)


# The kernel's own start-up log (a transport warning on every start) is not the user's business;
# its errors still reach the console.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]


class ChainProgress:
    """On a terminal, a bar under the runner's lines: the notebook running, how many are done and
    the time since the chain started, refreshed every second (VGG16's training runs for minutes
    without a line). The runner's own lines go above it. Off when the console is not a terminal
    (CI, logs, sweeps) or when the caller prints its lines itself (`log` other than print)."""

    def __init__(self, total: int, log=print, file=None, out=None):
        file, self.out = file or sys.stderr, out or sys.stdout  # the bar's stream, the lines'
        self.enabled = log is print and file.isatty() and self.out.isatty()  # not when the lines go to a pipe
        self.log = log
        if not self.enabled:
            return
        import threading

        from tqdm import tqdm  # a terminal's bar, wherever tqdm.auto would look

        self.bar = tqdm(
            total=total, file=file, leave=False, bar_format="{n}/{total} notebooks |{bar:12}| {elapsed} {desc}"
        )
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="chain-progress", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self.bar.refresh()

    def start(self, name: str) -> None:
        if self.enabled:
            self.bar.set_description_str(f"running {name}")  # last: a narrow terminal cuts the name, not the count

    def done(self) -> None:
        if self.enabled:
            self.bar.update()
            self.bar.refresh()  # at once, not at the next tick

    def say(self, line: str) -> None:
        if self.enabled:
            self.bar.write(line, file=self.out)  # above the bar, which is cleared and drawn again
        else:
            self.log(line)

    def close(self) -> None:
        if self.enabled:
            self._stop.set()
            self._ticker.join()
            self.bar.close()


def run_chain(params: dict, archs: list[str], log=print, with_controls: bool = True) -> RunConfig:
    params = absolute_paths(params)  # what the notebooks get, as this process's folder reads it
    absolute_folder_variables()
    # each notebook's arch is set from `archs` below: one given with the settings would be dropped
    given = params.get("arch", params.get("extra", {}).get("arch"))
    if given is not None:
        raise GADInputError(f"arch={given} is set per notebook from --archs: give --archs {given} (make: ARCH={given})")
    # Settings first, with nothing heavy imported yet, so that bad input is answered in seconds.
    cfg = RunConfig.from_params(params)
    said: list[warnings.WarningMessage] = []  # the console's "warning: ..." lines, as the notebooks' are
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always", GADWarning)
            preflight(cfg, archs)
    finally:  # also before a refusal (the warning may be why); shown once recording ended, or recorded again
        said_before = [f"warning: {w.message}" for w in said if issubclass(w.category, GADWarning)]
        for line in said_before:
            log(line)
        for w in said:
            if not issubclass(w.category, GADWarning):
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    from .runfolder import holding, run_started

    # The lock before anything heavy is imported: a second run into a held folder is refused at once.
    with holding(cfg) as removed:
        if removed:
            log(f"removed {removed} half-written file(s) that a stopped run left in {cfg.run_dir}")
        from . import forkkernel
        from .kernels import WarmKernel

        # Every notebook runs in a kernel started, and warmed up, ahead of it: the first one's
        # imports overlap this process's own below, each later one's the notebook before it.
        # With GAD_FORK_KERNELS=1 each kernel is a fork of a server that imported torch once
        # (gadlib/forkkernel.py); the first kernel then waits for the server's imports, which
        # overlap this process's own.
        server = None
        if forkkernel.enabled():
            try:
                server = forkkernel.ForkServer()
            except OSError as err:  # no socket here (a temporary folder's path too long, say)
                log(f"  note: notebook kernels start the usual way, not forked: {err}")

        def next_kernel() -> WarmKernel:
            return WarmKernel(NOTEBOOK_DIR, KERNEL_ARGUMENTS, fork_server=server and server.address)

        upcoming = None if server else next_kernel()
        progress = None
        try:
            import nbformat
            import papermill as pm
            from nbclient.exceptions import DeadKernelError

            from . import notices
            from .record import code_state, read_back, write_run_record
            from .report import run_results

            if upcoming is None:
                upcoming = next_kernel()
            code, began = code_state(), run_started(cfg.run_dir)
            out_dir = cfg.run_dir / "executed"
            out_dir.mkdir(parents=True, exist_ok=True)
            steps = (
                [(nb, archs[0]) for nb in PER_RUN]
                + [(nb, a) for a in archs for nb in PER_ARCH]
                + [(nb, archs[0]) for nb in (CONTROLS if with_controls else ())]
                + [(nb, archs[0]) for nb in FINAL]
            )
            # a warning said before the run (the notebooks say it again) is told once
            seconds, told = {}, set(said_before)
            progress = ChainProgress(len(steps), log)

            def tell(executed: Path) -> None:  # the notebook's warnings and notes, each once per run
                if executed.is_file():
                    for line in notices.from_notebook(nbformat.read(executed, as_version=4)):
                        if line not in told:
                            told.add(line)
                            progress.say(f"  {line}")

            for i, (nb, arch) in enumerate(steps):
                started = time.time()
                name = f"{nb}_{arch}" if nb in PER_ARCH + CONTROLS else nb
                executed = out_dir / f"{name}.ipynb"
                progress.start(name)
                kernel, upcoming = upcoming, next_kernel() if i + 1 < len(steps) else None
                try:
                    for attempt in (1, 2):
                        try:
                            pm.execute_notebook(
                                NOTEBOOK_DIR / f"{nb}.ipynb",
                                executed,
                                parameters={**params, "arch": arch},
                                cwd=str(NOTEBOOK_DIR),
                                progress_bar=False,
                                log_output=False,
                                extra_arguments=KERNEL_ARGUMENTS,
                                km=kernel.wait(),
                            )
                            break
                        except pm.PapermillExecutionError as err:
                            tell(executed)
                            raise NotebookFailed(err, name, executed) from err
                        except (
                            DeadKernelError,
                            RuntimeError,
                            TimeoutError,
                        ) as err:  # the kernel died (out of memory) or did not start
                            if attempt == 1 and kernel.did_not_start:  # nothing of the notebook ran: once more
                                progress.say(f"  note: the kernel for {name} did not start ({err}); started another")
                                kernel.close()
                                kernel = next_kernel()
                                continue
                            tell(executed)
                            raise NotebookFailed(_KernelError(err), name, executed) from err
                finally:
                    kernel.close()
                seconds[name] = time.time() - started
                progress.say(f"{name}: {seconds[name]:.0f} s")
                progress.done()
                tell(executed)
        finally:
            if progress is not None:
                progress.close()
            if upcoming is not None:
                upcoming.close()
            if server is not None:
                server.close()
        back = read_back(cfg, archs, archs[:1] if with_controls else [], began)
        write_run_record(cfg, run_results(cfg), seconds, code, back)
    return cfg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--archs", nargs="+", default=list(ARCHS))
    ap.add_argument("--run-name", default=None)
    ap.add_argument("--verbose", action="store_true", help="print a failed notebook's whole traceback")
    ap.add_argument("--no-controls", action="store_true", help="skip notebook 07 (the controls)")
    ap.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any notebook parameter, e.g. -p ig_steps=50",
    )
    args = ap.parse_args(argv)
    params = {"dataset": args.dataset, "data_dir": args.data_dir, "run_name": args.run_name}
    if args.profile:
        params["profile"] = args.profile
    values = {}
    for item in args.param:
        name, _, text = item.partition("=")
        try:
            value = parse_value(item)
        except GADInputError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        if name == "extra":  # the notebooks' own form: -p "extra={'consensus_q': 0.3}"
            if not isinstance(value, dict):
                print(
                    f"error: -p extra= needs a dict, e.g. -p \"extra={{'consensus_q': 0.3}}\", got {text!r}",
                    file=sys.stderr,
                )
                return 2
            pairs = list(value.items())
        else:
            pairs = [(name, value)]
        if twice := sorted(k for k, _ in pairs if k in values):  # else the later one would win unseen
            print(f"error: {', '.join(twice)} given twice (-p and extra count alike): give each once", file=sys.stderr)
            return 2
        values.update(pairs)
    if values:
        params = notebook_params({**params, **values})
    try:
        started = time.time()
        cfg = run_chain(params, args.archs, with_controls=not args.no_controls)
    except GADInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except NotebookFailed as failed:
        if args.verbose:
            print(str(failed.err), file=sys.stderr)
        print(f"error: {failed.line}", file=sys.stderr)
        return 2 if failed.err.ename == "GADInputError" else 1
    except KeyboardInterrupt:  # the kernels and the run folder's lock went in run_chain's finally blocks
        return stopped_by_user("every finished stage is kept in its run folder; the same command resumes from there")
    from .runfiles import strip_key

    print(f"done in {time.time() - started:.0f} s: tables and figures in {cfg.figure_dir}")
    for rule in cfg.hull_rules:
        for table in ("table1", "table2"):
            path = cfg.figure_dir / f"{table}_{rule}.md"
            if path.exists():
                print(f"\n{table} (hull rule {rule})\n{strip_key(path.read_text())}\n")
    return 0


def notebook_params(values: dict) -> dict:
    """Settings as the notebooks take them: a name of their parameters cell in its own right,
    any other RunConfig field in `extra` (given twice, it would be refused)."""
    declared = notebook_parameters()
    params = {k: v for k, v in values.items() if k in declared and k != "extra"}
    extra = {**values.get("extra", {}), **{k: v for k, v in values.items() if k not in declared}}
    return {**params, "extra": extra} if extra else params


def notebook_parameters() -> set[str]:
    """The names the notebooks' parameters cell assigns (the same in every notebook; a test
    checks it, and that Papermill reads the same names): anything else goes through `extra`.
    Read with json and ast, not Papermill, whose import (about 1 s) would come before the lock."""
    cells = json.loads((NOTEBOOK_DIR / "01_data.ipynb").read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if "parameters" in c["metadata"].get("tags", []))
    return {t.id for node in ast.parse(source).body if isinstance(node, ast.Assign) for t in node.targets}


if __name__ == "__main__":
    sys.exit(main())
