"""Every Example in the layer and loss docstrings runs and prints what it says."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch
from torch import nn

MODULES = ["cnnkit.layers.losses"] + [f"cnnkit.layers.{m}" for m in (
    "activations", "attention_pool", "blur_pool", "constraints", "conv", "drop_connect", "global_pool",
    "locally_connected", "norm", "penalties", "pooling", "roi_pool", "shape", "spp", "stochastic_pool", "unpool")]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    torch.manual_seed(0)
    result = doctest.testmod(importlib.import_module(name), extraglobs={"torch": torch, "nn": nn},
                             optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
