import os
from pathlib import Path

# Under pytest-xdist (make test runs the unit tests on two workers) each worker gets its share of
# the cores, set before torch is imported so that the notebook kernels its tests start inherit it:
# two workers whose torch threads each wanted every core made the suite slower, not faster
# (benchmarks/README.md).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
if _WORKERS:
    # the cores this process may use (the affinity where the OS has one: Linux)
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    _share = str(max(1, _cores // _WORKERS))
    os.environ["OMP_NUM_THREADS"] = _share  # alone: a test that asks a kernel for other threads sets only this one

import pytest  # noqa: E402
import torch  # noqa: E402

from gadlib.cpu_memory import keep_freed_memory, on_the_cpu  # noqa: E402

if _WORKERS:
    torch.set_num_threads(int(_share))  # in case a plugin imported torch first

if on_the_cpu("auto"):
    keep_freed_memory()  # as notebooks 01-07 do on the CPU (stages.setup): in-process tests reuse freed memory too
ROOT = Path(__file__).resolve().parent.parent  # gadlib itself is installed (pip install -e .[dev])
SHARED_DATA = ROOT.parent / "shared" / "data"


def assert_rs_by_hand(got: torch.Tensor, model, x: torch.Tensor, region: torch.Tensor, target, what="") -> None:
    """RS from its definition, by hand: the target logit's change when `region` (N, H, W) is set
    to 0 (the default fill), over its area; NaN for an empty region. Within the float32 rounding
    of the two logits (1e-5 of the logit, over the area), which another CPU's kernels or batch
    layout may move, and 1e-4 of the value: a wrong region or class is off by far more."""
    t = torch.as_tensor(target).expand(len(x))[:, None]
    with torch.no_grad():
        logit = model(x).gather(1, t)[:, 0].double()
        occluded = model(x * ~region[:, None]).gather(1, t)[:, 0].double()
    area = region.flatten(1).sum(1).double()
    by_hand = torch.where(area > 0, (logit - occluded).abs() / area, torch.nan)
    got = torch.as_tensor(got).double()
    assert torch.equal(got.isnan(), by_hand.isnan()), what
    close = (got - by_hand).abs() <= 1e-4 * by_hand.abs() + 1e-5 * logit.abs() / area.clamp(min=1)
    assert close[area > 0].all(), (what, got, by_hand)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def linear_model():
    """A linear two-class model on 3x6x6 inputs: its gradients are known in closed form."""
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 6 * 6, 2))
    return model.eval()


def execute_probe(tmp_path, name, sources, km=None):
    """Run a notebook of the given code cells with Papermill (in `km`'s kernel if given), as the
    runner does; the executed notebook."""
    import nbformat
    import papermill as pm

    from gadlib.reproduce import KERNEL_ARGUMENTS

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "probe.ipynb")
    return pm.execute_notebook(
        tmp_path / "probe.ipynb",
        tmp_path / f"{name}.ipynb",
        cwd=str(tmp_path),
        progress_bar=False,
        extra_arguments=KERNEL_ARGUMENTS,
        km=km,
    )


def pytest_collection_modifyitems(items):
    """The notebook chains (marked slow, the suite's four longest tests) first: a chain started
    last would leave the other worker idle for most of a minute. (xdist's worksteal hands the
    first worker the first half of the list, the chains with it; the other steals from the end of
    that worker's queue, short tests, which fill the end.)"""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: the rest keep their order
