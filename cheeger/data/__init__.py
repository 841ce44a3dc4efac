"""Datasets: the embedded synthetic scenes, CamVid, Cityscapes, and the one prepared format.

``prepare(config, out)`` writes any of them to the prepared format (see
:mod:`cheeger.data.prepared`); :class:`PreparedDataset` reads it back for training and evaluation.
"""

from __future__ import annotations

from cheeger.data.camvid import (
    CAMVID_CLASSES,
    camvid_source,
    download_camvid,
    read_checksums,
)
from cheeger.data.cityscapes import CITYSCAPES_CLASSES, cityscapes_root, cityscapes_source
from cheeger.data.dataset import PreparedDataset, collate_items
from cheeger.data.errors import (
    ChecksumError,
    DataError,
    DataNotFoundError,
    LabelValueError,
    PreparedFormatError,
)
from cheeger.data.prepare import build_source, prepare
from cheeger.data.prepared import Sample, Source, load_manifest, write_prepared
from cheeger.data.synthetic import SYNTHETIC_CLASSES, synthetic_scene, synthetic_source
from cheeger.data.transforms import RandomScaleCropFlip, random_scale_crop_flip

__all__ = [
    "CAMVID_CLASSES",
    "CITYSCAPES_CLASSES",
    "SYNTHETIC_CLASSES",
    "ChecksumError",
    "DataError",
    "DataNotFoundError",
    "LabelValueError",
    "PreparedDataset",
    "PreparedFormatError",
    "RandomScaleCropFlip",
    "Sample",
    "Source",
    "build_source",
    "camvid_source",
    "cityscapes_root",
    "cityscapes_source",
    "collate_items",
    "download_camvid",
    "load_manifest",
    "prepare",
    "random_scale_crop_flip",
    "read_checksums",
    "synthetic_scene",
    "synthetic_source",
    "write_prepared",
]
