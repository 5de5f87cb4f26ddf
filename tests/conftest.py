from pathlib import Path

import pytest
import torch

from gadlib.cpu_memory import keep_freed_memory, on_the_cpu

if on_the_cpu("auto"):
    keep_freed_memory()  # as notebooks 01-07 do on the CPU (stages.setup): in-process tests reuse freed memory too
ROOT = Path(__file__).resolve().parent.parent  # gadlib itself is installed (pip install -e .[dev])
SHARED_DATA = ROOT.parent / "shared" / "data"


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
