"""Decoder features of a trained run, as the demos' per-pixel features (``--run RUN``).

The run folder's ``best.pt`` (else ``checkpoint.pt``) gives the model
(:func:`cheeger.models.model_from_spec`: the U-Net or the EfficientNet-Lite FPN); its decoder map
(``forward_features``) on the image resized to :data:`INPUT_SCALE` times the working grid (at
most the image's own size; the FPN's map is at a quarter of its input) is area-pooled to the
working grid. The run does not record its dataset's
normalisation, so the image is standardised by its own per-channel mean and deviation (close to
the dataset's on natural frames, not equal). The channels are then standardised over the image
and scaled by ``sqrt(7 / C)``, so the graph's distances are on the scale of the seven handcrafted
features and the same bandwidth serves both.

Example:
    >>> import tempfile, torch
    >>> from cheeger.models import UNet
    >>> from cheeger.training.checkpoint import save_checkpoint
    >>> run = tempfile.mkdtemp()
    >>> model = UNet(num_classes=3, depth=2, width=4)
    >>> save_checkpoint(f"{run}/best.pt", {"model_spec": model.spec(),
    ...                                    "model": model.state_dict()})
    >>> DecoderFeatures(run)(torch.rand(3, 24, 32), (12, 16)).shape
    torch.Size([4, 12, 16])
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cheeger.demos.errors import DemoError
from cheeger.demos.features import FEATURE_NAMES
from cheeger.models import ModelSpecError, model_from_spec
from cheeger.training.checkpoint import load_checkpoint
from cheeger.training.errors import TrainingError

__all__ = ["INPUT_SCALE", "DecoderFeatures", "load_run_model"]

INPUT_SCALE = 4


def load_run_model(run: str | os.PathLike) -> nn.Module:
    """The model of a run folder with its best (else last) weights, in eval mode.

    Raises:
        DemoError: the folder has no readable ``best.pt`` or ``checkpoint.pt``.
    """
    run = Path(run)
    if not run.is_dir():
        raise DemoError(f"--run {run}: run folder not found")
    for name in ("best.pt", "checkpoint.pt"):
        if (run / name).is_file():
            try:
                state = load_checkpoint(run / name)
                model = model_from_spec(state["model_spec"])
                model.load_state_dict(state["model"])
            except (TrainingError, ModelSpecError, KeyError, RuntimeError) as exc:
                raise DemoError(f"--run {run / name}: not a usable checkpoint ({exc})") from exc
            return model.eval()
    raise DemoError(f"--run {run}: no best.pt or checkpoint.pt (train it with `cheeger train`)")


class DecoderFeatures(nn.Module):
    """``(image, (h, w)) -> (width, h, w)``: a run's decoder features on the working grid.

    Args:
        run: a run folder written by ``cheeger train``.
    """

    def __init__(self, run: str | os.PathLike) -> None:
        super().__init__()
        self.model = load_run_model(run)

    @torch.no_grad()
    def forward(self, image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``(3, H, W)`` image in ``[0, 1]`` -> ``(C, h, w)`` scaled decoder features."""
        shape = (min(image.shape[1], INPUT_SCALE * size[0]),
                 min(image.shape[2], INPUT_SCALE * size[1]))  # fmt: skip
        x = F.interpolate(image[None], shape, mode="area")  # (1, 3, H', W')
        mean, std = x.mean((2, 3), keepdim=True), x.std((2, 3), keepdim=True).clamp_min(1e-6)
        param = next(self.model.parameters())
        x = ((x - mean) / std).to(param)
        try:
            features = self.model.forward_features(x)  # (1, C, H'', W'')
        except RuntimeError as exc:  # e.g. an input smaller than the U-Net's 2^depth
            raise DemoError(f"--run: the model cannot take a {shape} input ({exc})") from exc
        features = F.adaptive_avg_pool2d(features, size)[0].to(image.dtype)  # (C, h, w)
        flat = features.reshape(features.shape[0], -1)
        std = flat.std(1, keepdim=True)
        scale = math.sqrt(len(FEATURE_NAMES) / flat.shape[0])
        flat = (flat - flat.mean(1, keepdim=True)) * torch.where(std > 1e-8, scale / std, 0.0)
        return flat.reshape(features.shape)
