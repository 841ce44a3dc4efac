"""Spectral filters ``h(lambda)`` on the bottom of ``L_sym``, and its noise floor.

:mod:`~cheeger.spectral.filter` holds the learned response and the factory of all filters,
:mod:`~cheeger.spectral.fixed_filters` the fixed rules it generalises,
:mod:`~cheeger.spectral.noise` the noise edge (null model or random-matrix theory), built on
:mod:`~cheeger.spectral.marchenko_pastur`.
"""

from __future__ import annotations

from cheeger.spectral.filter import (
    FILTERS,
    LearnedFilter,
    build_filter,
    learned_filter,
    log_chebyshev_features,
)
from cheeger.spectral.fixed_filters import (
    DiffusionFilter,
    HeatFilter,
    TruncationFilter,
    ZeroFilter,
    diffusion_filter,
    heat_filter,
    truncation_filter,
)
from cheeger.spectral.marchenko_pastur import (
    TW1_QUANTILE_99,
    kernel_bulk_edge,
    marchenko_pastur_edge,
    mehler_ratio,
    noise_span,
    noise_variance,
    spike_detection_threshold,
    tracy_widom_scale,
)
from cheeger.spectral.noise import (
    BOUNDS,
    NULLS,
    NoiseFloor,
    analytic_noise_edge,
    noise_floor,
    null_features,
    null_noise_edge,
    prediction_bound,
    student_t_quantile,
)

__all__ = [
    "BOUNDS",
    "FILTERS",
    "NULLS",
    "TW1_QUANTILE_99",
    "DiffusionFilter",
    "HeatFilter",
    "LearnedFilter",
    "NoiseFloor",
    "TruncationFilter",
    "ZeroFilter",
    "analytic_noise_edge",
    "build_filter",
    "diffusion_filter",
    "heat_filter",
    "kernel_bulk_edge",
    "learned_filter",
    "log_chebyshev_features",
    "marchenko_pastur_edge",
    "mehler_ratio",
    "noise_floor",
    "noise_span",
    "noise_variance",
    "null_features",
    "null_noise_edge",
    "prediction_bound",
    "spike_detection_threshold",
    "student_t_quantile",
    "tracy_widom_scale",
    "truncation_filter",
]
