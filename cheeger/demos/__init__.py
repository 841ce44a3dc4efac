"""Demos of the spectral embedding: a similarity map on an image, the same live on a stream, and
a dashboard that shows a training run as it goes (``cheeger demo ...``)."""

from __future__ import annotations

from cheeger.demos.embedding import (
    Embedding,
    SpectralEmbedding,
    cosine_similarity_map,
    spectral_embedding,
)
from cheeger.demos.errors import DemoError, QueryError, SourceError
from cheeger.demos.features import FEATURE_NAMES, FEATURE_WEIGHTS, PixelFeatures, pixel_features
from cheeger.demos.live import LIVE_LONG_SIDE, LiveStats, render_frame, run_live, write_animation
from cheeger.demos.similarity import (
    SIMILARITY_LONG_SIDE,
    ClickQuery,
    SimilarityResult,
    parse_query,
    similarity_figure,
    similarity_map,
    working_size,
)
from cheeger.demos.sources import FolderSource, VideoSource, WebcamSource, open_source, read_image

__all__ = [
    "FEATURE_NAMES",
    "FEATURE_WEIGHTS",
    "LIVE_LONG_SIDE",
    "SIMILARITY_LONG_SIDE",
    "ClickQuery",
    "DemoError",
    "Embedding",
    "FolderSource",
    "LiveStats",
    "PixelFeatures",
    "QueryError",
    "SimilarityResult",
    "SourceError",
    "SpectralEmbedding",
    "VideoSource",
    "WebcamSource",
    "cosine_similarity_map",
    "open_source",
    "parse_query",
    "pixel_features",
    "read_image",
    "render_frame",
    "run_live",
    "similarity_figure",
    "similarity_map",
    "spectral_embedding",
    "working_size",
    "write_animation",
]
