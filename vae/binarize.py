"""How a run sees its pixels: grey ("none"), binarised once ("static") or afresh at every step ("dynamic").

The Bernoulli decoder of appendix C.1 is a likelihood of binary pixels; grey pixels in [0, 1] are used
as they are by default. A static run draws x ~ Bernoulli(pixel) once, from a fixed seed; a dynamic run
draws a new binarisation of each minibatch from the trainer's noise generator, so that repeating a run
repeats its draws. Either way the test set is binarised once, so that epochs, `vae eval` and the
estimator lab all score the same images.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .metrics import as_tensor

if TYPE_CHECKING:
    from .config import TrainConfig
    from .data import Dataset


def prepare_inputs(x: torch.Tensor, mode: str, seed: int) -> torch.Tensor:
    """Static binarisation draws x ~ Bernoulli(pixel) once, from a fixed seed; other modes keep grey pixels."""
    if mode != "static":
        return x
    gen = torch.Generator(device=x.device).manual_seed(seed)
    return torch.bernoulli(x, generator=gen)


def batch_inputs(xb: torch.Tensor, mode: str, generator: torch.Generator) -> torch.Tensor:
    """A minibatch as one training step sees it: dynamic binarisation draws it afresh from `generator`."""
    return torch.bernoulli(xb, generator=generator) if mode == "dynamic" else xb


def test_inputs(data: Dataset, config: TrainConfig, device="cpu") -> torch.Tensor:
    """The test images as the run saw them: binarised runs (static or dynamic) are evaluated on one
    fixed binarisation of the test set, so that epochs, and `vae eval` afterwards, compare."""
    mode = "static" if config.binarize != "none" else "none"
    return prepare_inputs(as_tensor(data.x_test, device), mode, config.seed + 3)
