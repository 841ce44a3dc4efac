from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from cheeger.training import (
    RunNotFoundError,
    TrainingError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def _draws():
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)])  # noqa: NPY002


def test_rng_states_round_trip_through_a_checkpoint(tmp_path):
    torch.manual_seed(5)
    np.random.seed(5)  # noqa: NPY002
    random.seed(5)
    np.random.randn()  # noqa: NPY002  # leaves a cached Gaussian in the legacy state
    save_checkpoint(tmp_path / "c.pt", {"rng": rng_state()})
    expected = _draws()
    _draws()  # move every generator on
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert _draws() == expected


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1, "weights": torch.arange(4.0)})
    before = path.read_bytes()

    def broken_save(obj, handle):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"epoch": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
    monkeypatch.undo()
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["weights"], torch.arange(4.0))


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(RunNotFoundError, match=r"none\.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "torn.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match=r"torn\.pt: unreadable checkpoint"):
        load_checkpoint(tmp_path / "torn.pt")
