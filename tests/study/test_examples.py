"""The docstring examples of cheeger.study's table helpers run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch

MODULES = ["cheeger.study.diagnostics"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0
