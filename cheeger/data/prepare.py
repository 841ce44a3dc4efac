"""From a :class:`~cheeger.config.DataConfig` to a prepared folder: pick the source, write it.

Example:
    >>> from cheeger.config import DataConfig
    >>> params = {"profile": "toy", "profiles": {"toy": {"dataset": "synthetic", "root": None,
    ...           "resolution": [32, 40]}}, "data": {"synthetic": {"size": [32, 40],
    ...           "splits": {"train": 2}}}}
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "toy"
    >>> prepare(DataConfig.from_params(params), out)["splits"]["train"]["size"]
    2
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cheeger.data.camvid import camvid_source, download_camvid
from cheeger.data.cityscapes import cityscapes_root, cityscapes_source
from cheeger.data.errors import DataError
from cheeger.data.prepared import Source, write_prepared
from cheeger.data.synthetic import synthetic_source

if TYPE_CHECKING:
    from cheeger.config import DataConfig

__all__ = ["build_source", "default_cache_dir", "prepare"]


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/cheeger`` (``~/.cache/cheeger`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cheeger"


def build_source(config: DataConfig) -> Source:
    """The :class:`Source` of ``config.dataset`` (downloading CamVid first when it has no root).

    Raises:
        DataError: unknown dataset name, or any input problem of the chosen dataset.
    """
    if config.dataset == "synthetic":
        syn = config.synthetic
        counts = {split: syn.splits[split] for split in config.splits}
        return synthetic_source(syn.seed, counts, syn.size, config.limit)
    if config.dataset == "camvid":
        root = config.root
        if root is None:
            cache = config.camvid.cache_dir or default_cache_dir() / "camvid"
            root = download_camvid(config.camvid.url, cache, config.splits, config.limit)
        source = camvid_source(root, config.splits, config.limit)
        if config.root is None:
            source = replace(source, info={**source.info, "url": config.camvid.url})
        return source
    if config.dataset == "cityscapes":
        key = f"profiles.{config.profile}.root"
        root = cityscapes_root(config.root, key, config.cityscapes.root_env)
        return cityscapes_source(root, config.splits, config.limit)
    raise DataError(
        f"profiles.{config.profile}.dataset: unknown dataset {config.dataset!r}; "
        "expected one of ['synthetic', 'camvid', 'cityscapes']"
    )


def prepare(config: DataConfig, out: str | os.PathLike) -> dict[str, Any]:
    """Prepare the dataset of ``config`` into ``out`` (atomically); return the manifest."""
    source = build_source(config)
    extra = {"profile": config.profile, "limit": config.limit}
    return write_prepared(source, out, config.resolution, extra)
