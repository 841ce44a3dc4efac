"""Loading ``params.yaml`` and building the per-component config dataclasses from it.

``params.yaml`` holds a ``profile:`` switch, a ``profiles:`` mapping (one block per dataset
set-up: ``dataset``, ``root``, ``resolution``, optional ``splits``, ``limit`` and overrides of the
shared sections) and the shared sections (``data:``, ``model:``, ``train:``, ``spectral:``,
``evaluate:``, ``study:``). One source checks it: the JSON schema
``workflow/schemas/params.schema.yaml`` (:mod:`cheeger.config.schema`) holds every key's type,
range and choices, and is also Snakemake's check. The dataclasses only build typed settings from
checked sections and check relations between keys the schema cannot state. Every error is a
:class:`ParamsError` naming the file, the dotted key and what was expected, e.g.
``params.yaml: profiles.camvid.resolution: expected [H, W] positive ints, got [360]``.

Modules: :mod:`~cheeger.config.params` (the file, profiles, section layers),
:mod:`~cheeger.config.schema`, :mod:`~cheeger.config.data` (``data:`` and the profile's dataset),
:mod:`~cheeger.config.training` (``model:``, ``train:``, loss weights, ``evaluate:``) and
:mod:`~cheeger.config.heads` (each head's options).

Example:
    >>> params = {"profile": "toy", "profiles": {"toy": {"dataset": "synthetic", "root": None,
    ...           "resolution": [64, 80]}}}
    >>> config = DataConfig.from_params(params)
    >>> config.dataset, config.resolution, config.splits
    ('synthetic', (64, 80), ('train', 'val', 'test'))
"""

from cheeger.config.data import (
    DATASETS,
    AugmentConfig,
    CamVidConfig,
    CityscapesConfig,
    DataConfig,
    SyntheticConfig,
)
from cheeger.config.heads import HEAD_OPTION_READERS, head_options
from cheeger.config.params import ParamsError, active_profile, load_params
from cheeger.config.schema import PARAMS_SCHEMA, check_params_schema, params_schema_path
from cheeger.config.training import (
    NORMS,
    EvaluateConfig,
    LossWeightsConfig,
    ModelConfig,
    TrainConfig,
)

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
