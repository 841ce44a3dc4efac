"""The frozen-encoder feature cache (taps computed once per image and flip)."""

from __future__ import annotations

from cheeger.features.cache import (
    DONE,
    FORMAT,
    SETTINGS,
    CachedTaps,
    FeaturesError,
    compute_features,
    features_settings,
)

__all__ = [
    "DONE",
    "FORMAT",
    "SETTINGS",
    "CachedTaps",
    "FeaturesError",
    "compute_features",
    "features_settings",
]
