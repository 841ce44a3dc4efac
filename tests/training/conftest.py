"""A tiny prepared dataset and run settings small enough for a training run in about a second."""

from __future__ import annotations

import pytest
import torch

from cheeger.config import DataConfig, EvaluateConfig, ModelConfig, TrainConfig
from cheeger.data import prepare
from cheeger.training import RunSpec

TINY_PARAMS = {
    "profile": "tiny",
    "profiles": {"tiny": {"dataset": "synthetic", "root": None, "resolution": [32, 40]}},
    "data": {"synthetic": {"seed": 3, "size": [32, 40],
                           "splits": {"train": 6, "val": 3, "test": 3}}},
}  # fmt: skip


@pytest.fixture(autouse=True, scope="package")
def one_thread():
    """Tiny models gain nothing from threads, and on a shared machine extra threads only wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """Synthetic scenes at 32x40: 6 train, 3 val, 3 test images."""
    out = tmp_path_factory.mktemp("prepared") / "tiny"
    prepare(DataConfig.from_params(TINY_PARAMS), out)
    return out


@pytest.fixture(scope="session")
def tiny_spec(tiny_data):
    """``tiny_spec(out, **changes)``: a 3-epoch, 2-steps-per-epoch run on the tiny data."""

    def make(out, **changes):
        base = {
            "data": tiny_data, "out": out, "head": "conv", "seed": 0,
            "model": ModelConfig(depth=2, width=4, norm="batch"),
            "train": TrainConfig(epochs=3, batch_size=3, lr=0.01, lr_warmup_epochs=0.5,
                                 device="cpu"),
            "evaluate": EvaluateConfig(batch_size=2),
            "progress": False, "echo": False, "live": False,
        }  # fmt: skip
        return RunSpec(**{**base, **changes})

    return make
