"""Where notebooks 02-05 and 07 spend their time beyond the arithmetic. Each stage runs in a fresh
process, as in its notebook (nothing in memory, every earlier result read from the run folder),
and prints its seconds per call and cProfile's top functions by cumulative time. The run folder
is the one `make reproduce` would use with the same settings (GAD_RUNS_DIR moves it), so a
stage already computed there is only read back. For example, the birds pack at the paper's
size with one epoch per model (about 13 minutes for notebooks 02 and 03 on the 2-core CPU):

  .venv/bin/python tools/profile_stages.py --dataset folder --data-dir ../shared/data/cub_warbler_sparrow \\
      --profile paper --run-name profile-224 -p n_eval=360 -p train_epochs=1 -p support_epochs=1 \\
      -p "methods=['saliency','deconvolution']" --stages 02 03 04 05
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import signal
import subprocess
import sys
import time
from pathlib import Path

STAGES = {  # notebook -> the stage calls its cells make, in order, each with how many of the
    # results before it it takes (after cfg and data)
    "02": [("model_family", 0)],
    "03": [("model_family", 0), ("attributions", 1)],
    "04": [("model_family", 0), ("attributions", 1), ("complexity", 2)],
    "05": [("model_family", 0), ("sensitivity", 1)],
    "07": [
        ("model_family", 0),
        ("attributions", 1),
        ("complexity", 2),
        ("controls.controls", 3),
        ("controls.sanity_check", 2),
    ],
}


def run_stage(notebook: str, settings: dict, top: int) -> None:
    """One notebook's stage calls under cProfile; each call's seconds printed as it ends, and the
    profile printed at the end or when the process is told to stop (SIGTERM, as `timeout` does),
    so a stage cut short still says where its time went."""
    import importlib

    started = time.time()
    from gadlib import stages

    profile = cProfile.Profile()

    def report(*_):
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(top)
        print(out.getvalue().split("\n\n", 2)[-1].rstrip() + "\n", flush=True)

    def stopped(signum, frame):
        print(f"notebook {notebook}: stopped after {time.time() - started:.1f} s, during the call above", flush=True)
        report()
        sys.exit(124)

    signal.signal(signal.SIGTERM, stopped)
    print(f"notebook {notebook}: imports {time.time() - started:.1f} s", flush=True)
    profile.enable()
    t = time.time()
    cfg, data = stages.setup(settings)
    print(f"notebook {notebook} ({cfg.arch}): setup {time.time() - t:.1f} s", flush=True)
    earlier = []  # the results of the calls before, as the notebook's cells keep them
    for name, takes in STAGES[notebook]:
        module, _, function = name.rpartition(".")
        call = getattr(importlib.import_module(f"gadlib.{module}") if module else stages, function)
        t = time.time()
        earlier.append(call(cfg, data, *earlier[:takes]))
        print(f"notebook {notebook} ({cfg.arch}): {name} {time.time() - t:.1f} s", flush=True)
    report()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--profile", default="default")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--run-name", default="profile-stages")
    ap.add_argument("--stages", nargs="+", default=list(STAGES), choices=list(STAGES))
    ap.add_argument("--top", type=int, default=25, help="functions listed per stage")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # a single stage, in the child process
    args = ap.parse_args(argv)
    settings = {"dataset": args.dataset, "profile": args.profile, "arch": args.arch, "run_name": args.run_name}
    if args.data_dir:
        settings["data_dir"] = str(Path(args.data_dir).expanduser().resolve())
    from gadlib.config import RunConfig, parse_value
    from gadlib.errors import GADInputError

    for item in args.param:
        name, eq, text = item.partition("=")
        if not eq or (name not in RunConfig.__dataclass_fields__ and name != "extra"):
            ap.error(f"-p {item}: give NAME=VALUE with NAME a notebook parameter (RunConfig field) or extra")
        try:
            settings[name] = parse_value(item)  # as the runner reads it
        except GADInputError as err:
            ap.error(str(err))
    if args.one:
        run_stage(args.one, settings, args.top)
        return 0
    given = argv if argv is not None else sys.argv[1:]
    # `timeout` signals the whole process group: this parent waits while the child prints its
    # profile (its own SIGTERM handler), so nothing reads the child's output before it is written
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for notebook in args.stages:  # each in its own process, as each notebook has its own kernel
        code = subprocess.call([sys.executable, __file__, *given, "--one", notebook])
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
