import pytest
import torch

import kd  # noqa: F401  (registers the CIFAR zoo)
from kd.data import load_dataset


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own teacher cache, so no test reuses another's teacher."""
    monkeypatch.setenv("KD_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def fmnist():
    """Real Fashion-MNIST (tests never use fake data for what they call real)."""
    torch.set_num_threads(2)
    return load_dataset("fashion_mnist")
