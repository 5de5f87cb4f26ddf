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
# then a digest of a support trained and maps computed there.
SIDE = """
import hashlib, json, resource, torch
from gadlib.cpu_memory import keep_freed_memory
from gadlib.attributions import attribution_maps
from gadlib.config import METHODS
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
model = build_model("resnet18", 2, 32).eval()
images, targets = torch.randn(64, 3, 32, 32), torch.randn(64, 2)
support, losses = train_support(model, images, targets, 1, 4e-5, 32)
maps = attribution_maps([model, support], images[:4], list(METHODS), ig_steps=4, precision="fp32", progress=False)
digest = hashlib.sha256(str(losses).encode())
for t in [*support.state_dict().values(), *maps.values()]:
    digest.update(t.numpy().tobytes())
print(json.dumps({"applied": applied, "faults": faults, "digest": digest.hexdigest()}))
"""


def _side(keep: str) -> dict:
    env = {**os.environ, "GAD_KEEP_FREED_MEMORY": keep}
    out = subprocess.run([sys.executable, "-c", SIDE], env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's malloc's")
def test_kept_memory_is_reused_not_faulted_in_and_computes_the_same():
    plain, kept = _side("0"), _side("1")
    assert (plain["applied"], kept["applied"]) == (False, True)
    pages = 64 * 64 * 64 * 64 * 4 // 4096  # the output's pages: each faulted in again by default
    assert plain["faults"] >= 0.9 * pages, plain
    assert kept["faults"] < 0.01 * pages, kept
    assert kept["digest"] == plain["digest"]  # the same support and maps, to the bit


def test_the_notebooks_setup_keeps_freed_memory_on_cpu_runs_only(monkeypatch):
    calls = []
    monkeypatch.setattr(stages, "keep_freed_memory", lambda: calls.append(1))
    params = {"profile": "smoke", "dataset": "synthetic", "n_train": 8, "n_test": 8, "run_name": "memory-setting"}
    stages.setup({**params, "device": "cpu"})
    assert calls == [1]
    stages.setup({**params, "device": "cuda"})  # device names are not checked here: no GPU needed
    assert calls == [1]
