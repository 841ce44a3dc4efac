"""The docstring examples of cheeger.training.validation run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch

MODULES = ["cheeger.training.validation"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    torch.manual_seed(0)
    result = doctest.testmod(importlib.import_module(name), extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0
