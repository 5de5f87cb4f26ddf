"""A run as users meet it, through `python -m gadlib.reproduce` (issue #13): odd and unreadable
images in the class folders, a run killed by SIGKILL during support training and again during
the attributions, a second run started into the same run folder, and the resume that finishes
the job without recomputing anything finished. Also the console's copy of notebook warnings."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from gadlib import notices

from conftest import ROOT

RUN = "kill-test"
# Slow enough stages to be caught in the middle: here a support trains for about 4 s and the
# attributions cell takes about 4 s, while the test reacts within a tenth of a second, so a
# machine several times faster still leaves a margin (30 epochs and 128 steps, as before, cost
# make test about 15 s more: the test took 85-92 s then, 73-78 s now).
# On the CPU even where there is a GPU, which would finish them before the test could react.
SLOW = ["-p", "support_epochs=15", "-p", "ig_steps=48", "-p", "device=cpu"]


def _users_folder(root):
    """16 noisy images per class, plus what people's folders hold: grey, RGBA, CMYK, 16-bit,
    palette, WebP, .JPG, 1-pixel and 4000x16 images (readable), a text file (ignored), and a
    truncated, an empty and a fake JPEG (unreadable: skipped, counted, listed)."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(("cats", "dogs")):
        d = root / name
        d.mkdir(parents=True)
        for i in range(16):
            pixels = rng.integers(0, 120, (40, 40, 3), dtype=np.uint8) + np.uint8(100 * k)
            Image.fromarray(pixels).save(d / f"{i}.png")
    cats, dogs = root / "cats", root / "dogs"
    Image.new("L", (30, 40), 90).save(cats / "grey.jpg")
    Image.new("RGBA", (40, 30), (10, 200, 10, 128)).save(cats / "rgba.png")
    Image.new("CMYK", (40, 40), (0, 255, 255, 0)).save(cats / "cmyk.jpg")
    Image.fromarray(np.full((40, 40), 40000, dtype=np.uint16)).save(dogs / "deep.png")
    Image.new("P", (40, 40), 3).save(dogs / "palette.png")
    Image.new("RGB", (40, 40), (1, 2, 3)).save(dogs / "photo.webp")
    Image.new("RGB", (40, 40), (200, 2, 3)).save(dogs / "LOUD.JPG")
    Image.new("RGB", (1, 1), (9, 9, 9)).save(dogs / "pixel.png")
    Image.new("RGB", (4000, 16), (9, 90, 9)).save(dogs / "strip.png")
    (dogs / "notes.txt").write_text("not an image")
    good = (cats / "0.png").read_bytes()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(cats / "whole.jpg")
    (cats / "truncated.jpg").write_bytes((cats / "whole.jpg").read_bytes()[:200])
    (cats / "whole.jpg").unlink()
    (dogs / "empty.jpg").write_bytes(b"")
    (dogs / "fake.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg" + good[:10])
    return root


def _start(data_dir, tmp_path, *extra):
    env = {**os.environ, "GAD_RUNS_DIR": str(tmp_path / "runs"), "GAD_FIGURES_DIR": str(tmp_path / "figures")}
    cmd = [
        sys.executable,
        "-m",
        "gadlib.reproduce",
        "--profile",
        "smoke",
        "--dataset",
        "folder",
        "--data-dir",
        str(data_dir),
        "--archs",
        "resnet18",
        "--run-name",
        RUN,
        "--no-controls",
        *SLOW,
        *extra,
    ]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(what, proc, timeout=240):
    deadline = time.time() + timeout
    while not what():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before the moment to kill it: {proc.communicate()}")
        assert time.time() < deadline, "timed out waiting for the run"
        time.sleep(0.02)


def _descendants(pid):
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            children = open(f"/proc/{pid}/task/{task}/children").read().split()
        except FileNotFoundError:
            continue
        for child in map(int, children):
            out += [child, *_descendants(child)]
    return out


def _kill_hard(proc):
    """SIGKILL the runner and its kernel at once, as a lost machine would."""
    for pid in [*_descendants(proc.pid), proc.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def _cell_running(notebook, text):
    """Whether the executed notebook shows the cell containing `text` running right now."""
    try:
        nb = json.loads(notebook.read_text())
    except (FileNotFoundError, json.JSONDecodeError):  # Papermill rewrites it in place
        return False
    return any(
        text in "".join(c["source"]) and c["metadata"].get("papermill", {}).get("status") == "running"
        for c in nb["cells"]
    )


def _snapshot(run_dir):
    return {p.relative_to(run_dir): p.stat().st_mtime_ns for p in run_dir.rglob("*.pt")}


def _every_file_whole(run_dir):
    for p in run_dir.rglob("*.pt"):
        torch.load(p, map_location="cpu", weights_only=False)  # raises on a half-written file


@pytest.fixture
def started_procs():
    """Runs a test starts; whatever is still running when it ends (a failed assertion) is killed."""
    procs = []
    yield procs
    for p in procs:
        if p.poll() is None:
            _kill_hard(p)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc")
def test_killed_twice_then_resumed_with_a_second_run_refused(tmp_path, started_procs):
    data_dir = _users_folder(tmp_path / "pets")
    run_dir = tmp_path / "runs" / RUN
    models = run_dir / "resnet18" / "models"

    # 1. Killed during support training: the first support is stored, the second is training.
    first = _start(data_dir, tmp_path)
    started_procs.append(first)
    _wait_for(lambda: (models / "support_2_2.pt").is_file(), first)
    _kill_hard(first)
    assert not (models / "support_8_8.pt").exists(), "the supports trained too fast to be killed in the middle"
    _every_file_whole(run_dir)
    killed_in_training = _snapshot(run_dir)
    assert {"data.pt", "resnet18/models/original.pt", "resnet18/models/support_2_2.pt"} <= {
        str(p) for p in killed_in_training
    }

    # 2. The resume is killed during the attributions; meanwhile a second run into the same folder is refused.
    second = _start(data_dir, tmp_path)
    started_procs.append(second)
    holder = run_dir / "RUNNING"  # the killed run's file is still there until the resume takes the lock
    _wait_for(lambda: holder.is_file() and f"pid {second.pid}," in holder.read_text(), second)
    third = _start(data_dir, tmp_path)
    started_procs.append(third)
    out, err = third.communicate(timeout=60)
    assert third.returncode == 2, (out, err)
    assert err.strip().startswith(f"error: run folder {run_dir} is in use by another run (pid {second.pid}")
    assert "\n" not in err.strip()  # one line (at once: test_the_runner_refuses_a_held_folder_before_importing_torch)
    executed = run_dir / "executed" / "03_attributions_resnet18.ipynb"
    _wait_for(lambda: _cell_running(executed, "stages.attributions("), second)
    time.sleep(0.3)  # into the computation
    _kill_hard(second)
    assert not list((run_dir / "resnet18" / "attributions").glob("*.pt")), "the attributions ended before the kill"
    _every_file_whole(run_dir)
    killed_in_attributions = _snapshot(run_dir)
    for path, mtime in killed_in_training.items():  # the first resume recomputed nothing finished
        assert killed_in_attributions[path] == mtime, path
    assert "resnet18/models/support_8_8.pt" in {str(p) for p in killed_in_attributions}

    # 3. The next run finishes, reusing every finished file.
    last = _start(data_dir, tmp_path)
    started_procs.append(last)
    out, err = last.communicate(timeout=600)
    assert last.returncode == 0, err
    finished = _snapshot(run_dir)
    for path, mtime in killed_in_attributions.items():
        assert finished[path] == mtime, path
    assert not list(run_dir.rglob(".*.tmp")) and not (run_dir / "RUNNING").exists()
    assert (tmp_path / "figures" / RUN / "RUN.json").is_file()

    # The notebooks' warnings reached the console, once each: the skipped images, with the list.
    listed = (run_dir / "skipped_images.txt").read_text().splitlines()
    assert sorted(line.split(":")[0].rsplit("/", 1)[1] for line in listed) == ["empty.jpg", "fake.jpg", "truncated.jpg"]
    listing = run_dir / "skipped_images.txt"
    warning = f"  warning: 3 unreadable image file(s) in {data_dir} were skipped; the list is in {listing}"
    assert out.splitlines().count(warning) == 1, out
    assert "note: resnet18 attribution precision: saliency " in out
    assert "Kernel is running over TCP" not in err
    # ipywidgets is installed, so progress bars render as widgets in the notebooks
    assert not any("IProgress not found" in p.read_text() for p in (run_dir / "executed").glob("*.ipynb"))


def test_notes_and_warnings_are_read_back_from_an_executed_notebook():
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    nb = new_notebook(
        cells=[
            new_code_cell(
                "a",
                outputs=[
                    new_output("stream", name="stderr", text="\r/x.py:3: GADWarning: 3 unreadable image"),
                    new_output("stream", name="stderr", text=" file(s) were skipped\n  data = load(cfg)\n"),
                    new_output("stream", name="stdout", text=f"{notices.NOTE_PREFIX}precision: fp32\nother output\n"),
                ],
            ),
            new_code_cell(
                "b",
                outputs=[
                    new_output(
                        "stream",
                        name="stderr",
                        text="/x.py:3: GADWarning: 3 unreadable image file(s) were skipped\nUserWarning: other\n",
                    )
                ],
            ),
        ]
    )
    nbformat.validate(nb)
    assert notices.from_notebook(nb) == ["warning: 3 unreadable image file(s) were skipped", "note: precision: fp32"]


def test_a_held_run_folder_is_refused_and_a_killed_holder_frees_it(tmp_path):
    """The lock lives as long as its process: a holder killed by SIGKILL leaves the folder free,
    and the half-written files it left are removed by the next run."""
    from gadlib import GADInputError, RunConfig, runfiles

    cfg = RunConfig.build(profile="smoke", runs_dir=str(tmp_path / "runs"), figures_dir=str(tmp_path / "figures"))
    code = (
        "import os, sys, time; from gadlib import RunConfig, runfiles\n"
        "cfg = RunConfig.build(profile='smoke', runs_dir=sys.argv[1], figures_dir=sys.argv[2])\n"
        "with runfiles.holding(cfg):\n"
        "    p = cfg.run_dir / '.data.pt.x1.tmp'; p.write_text('half'); os.utime(p, (1, 1))\n"
        "    (cfg.run_dir / '.rs.csv.x2.tmp').write_text('being written now')\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "runs"), str(tmp_path / "figures")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(GADInputError, match=f"in use by another run \\(pid {holder.pid}, started "):
        with runfiles.holding(cfg):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with runfiles.holding(cfg) as removed:  # an old leftover goes; a fresh one may be a dying kernel's
        assert removed == 1 and [p.name for p in cfg.run_dir.glob(".*.tmp")] == [".rs.csv.x2.tmp"]


def test_the_runner_refuses_a_held_folder_before_importing_torch(tmp_path):
    """The lock is the runner's first step after the input checks (settings given with -p
    included): a second run is told at once, not after the seconds that importing Papermill,
    torch, torchvision and captum take."""
    from gadlib import RunConfig, runfolder

    dirs = {"runs_dir": str(tmp_path / "runs"), "figures_dir": str(tmp_path / "figures")}
    code = (
        "import sys; from gadlib.reproduce import main\n"
        "rc = main(['--profile', 'smoke', '--archs', 'resnet18', '-p', 'ig_steps=3'])\n"
        "print(rc, *(m in sys.modules for m in ('torch', 'papermill', 'jupyter_client')))\n"
    )
    env = {**os.environ, "GAD_RUNS_DIR": dirs["runs_dir"], "GAD_FIGURES_DIR": dirs["figures_dir"]}
    with runfolder.holding(RunConfig.build(profile="smoke", **dirs)):
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.stdout == "2 False False False\n", (done.stdout, done.stderr)  # no torch, no Papermill, no kernel
    assert done.stderr.startswith("error: run folder ") and "is in use by another run (pid " in done.stderr


def test_the_chain_progress_bar_is_drawn_on_a_terminal_only(capsys):
    """On a terminal the runner draws a bar naming the notebook running, and its own lines go
    above it; elsewhere (CI, a log file, a sweep's own log) nothing but the lines."""
    import io

    from gadlib.reproduce import ChainProgress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen, lines_out = Terminal(), Terminal()
    progress = ChainProgress(3, print, file=screen, out=lines_out)
    progress.start("02_support_training_vgg16")
    progress.say("01_data: 2 s")
    progress.done()
    progress.close()
    assert "1/3 notebooks |" in screen.getvalue() and "| 00:00 running 02_support_training_vgg16" in screen.getvalue()
    assert lines_out.getvalue() == "01_data: 2 s\n"
    lines = []
    quiet = ChainProgress(3, lines.append, file=Terminal(), out=Terminal())  # a caller's own log: no bar
    quiet.start("01_data")
    quiet.say("01_data: 2 s")
    quiet.close()
    assert lines == ["01_data: 2 s"] and not quiet.enabled
    assert not ChainProgress(3, print, file=io.StringIO(), out=Terminal()).enabled  # the bar's stream not a terminal
    assert not ChainProgress(3, print, file=Terminal(), out=io.StringIO()).enabled  # the lines piped (| tee log)
    assert capsys.readouterr().out == ""
