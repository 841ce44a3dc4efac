"""The docstring examples of cheeger.linalg run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch

MODULES = ["cheeger.linalg.eigsh", "cheeger.linalg.forward", "cheeger.linalg.lobpcg",
           "cheeger.linalg.multigrid"]  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    torch.manual_seed(0)
    result = doctest.testmod(importlib.import_module(name), extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0
