"""Freed memory kept for reuse on the CPU (gadlib/cpu_memory.py): large tensors stop being
faulted in afresh, the results stay the same to the bit, and the notebooks' setup makes the
setting on CPU runs only."""

import json
import os
import platform
import subprocess
import sys

import pytest

from gadlib import stages

# One side, in a fresh process (malloc's settings are the process's): page faults of a
# convolution whose 67 MB output is above malloc's largest mapping threshold, after a warm-up,
# then a digest of a support trained and its maps computed there (IG's one pass over 4 images
# x 32 steps at 64 px makes activations of 34 MB, mapped afresh by default too).
SIDE = """
import hashlib, json, resource, torch
from gadlib.cpu_memory import keep_freed_memory
from gadlib.attributions import attribution_maps
from gadlib.models import build_model
from gadlib.training import train_support

applied = keep_freed_memory()
x, w = torch.randn(64, 3, 64, 64), torch.randn(64, 3, 3, 3)
for _ in range(5):
    torch.nn.functional.conv2d(x, w, padding=1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    torch.nn.functional.conv2d(x, w, padding=1)
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5
torch.manual_seed(0)
model = build_model("resnet18", 2, 64).eval()
images, targets = torch.randn(32, 3, 64, 64), torch.randn(32, 2)
support, losses = train_support(model, images, targets, 1, 4e-5, 32)
methods = ["saliency", "integrated_gradients"]
maps = attribution_maps([support], images[:4], methods, ig_steps=32, precision="fp32", progress=False)
digest = hashlib.sha256(str(losses).encode())
for t in [*support.state_dict().values(), *maps.values()]:
    digest.update(t.numpy().tobytes())
print(json.dumps({"applied": applied, "faults": faults, "digest": digest.hexdigest()}))
"""


def _side(keep: str) -> dict:
    env = {**os.environ, "GAD_KEEP_FREED_MEMORY": keep}
    done = subprocess.run([sys.executable, "-c", SIDE], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr.strip().splitlines()[-1:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's malloc's")
def test_kept_memory_is_reused_not_faulted_in_and_computes_the_same():
    plain, kept = _side("0"), _side("1")
    assert (plain["applied"], kept["applied"]) == (False, True)
    pages = 64 * 64 * 64 * 64 * 4 // 4096  # the output's 4 KB pages, each faulted in again by default
    assert kept["faults"] < 0.01 * pages, kept
    # by default at least the output's pages, or its 2 MB pages where huge pages are always on
    assert plain["faults"] >= 10 * max(kept["faults"], 1), plain
    assert kept["digest"] == plain["digest"]  # the same support and maps, to the bit


def test_the_notebooks_setup_keeps_freed_memory_on_cpu_runs_only(monkeypatch, tmp_path):
    import torch

    calls = []
    monkeypatch.setattr(stages, "keep_freed_memory", lambda: calls.append(1))
    monkeypatch.setenv("GAD_RUNS_DIR", str(tmp_path))
    params = {"profile": "smoke", "dataset": "synthetic", "n_train": 8, "n_test": 8}
    for device, gpu, made in (("cpu", True, 1), ("cuda", False, 0), ("auto", True, 0), ("auto", False, 1)):
        monkeypatch.setattr(torch.cuda, "is_available", lambda gpu=gpu: gpu)  # no GPU needed
        calls.clear()
        stages.setup({**params, "device": device})
        assert len(calls) == made, (device, gpu)
