from pathlib import Path

import pytest
import torch

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
