"""Settings of ``cheeger unsupervised``: the ``unsupervised:`` section of ``params.yaml``.

A profile may override any key in ``profiles.<name>.unsupervised`` (merged key by key into the
section, sub-mappings too). Every key has a default (:class:`UnsupervisedConfig`), unknown keys
are refused with their path named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cheeger.config import ParamsError, active_profile

__all__ = ["UnsupervisedConfig"]

_DEFAULTS: dict[str, Any] = {
    "clusters": 11,
    "majority_clusters": 32,
    "stride": 16,
    "levels": [1, 2, 3],
    "seed": 0,
    "repeat_seeds": [],
    "limit": None,
    "kernel": {"k": 32, "alpha": 0.3, "pixel_k": [20, 10], "position_weights": [2.0, 0.1]},
    "kmeans": {"sample_per_image": 200, "iters": 50},
    "eigsh": {"eigenvectors": 8, "segments": 8},
    "neuralef": {"beta": 1.0, "epochs": 2, "batch_images": 4, "lr": 1.0e-3, "hidden": 256,
                 "layers": 1, "tau": [1.0, 0.3]},
    "fidelity": {"batches": 4},
}


def _merge(base: dict[str, Any], over: Mapping[str, Any], where: str) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if key not in base:
            raise ParamsError(f"{where}.{key}: unknown key; expected one of {sorted(base)}")
        if isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                raise ParamsError(f"{where}.{key}: expected a mapping, got {value!r}")
            out[key] = _merge(base[key], value, f"{where}.{key}")
        else:
            out[key] = value
    return out


def _int(value: Any, where: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ParamsError(f"{where}: expected an int >= {low}, got {value!r}")
    return value


def _float(value: Any, where: str, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= low:
        raise ParamsError(f"{where}: expected a number >= {low}, got {value!r}")
    return float(value)


def _seeds(value: Any, seed: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)):
        raise ParamsError(f"{where}: expected a list of ints >= 0, got {value!r}")
    seeds = tuple(_int(v, where, 0) for v in value)
    if len(set(seeds)) != len(seeds) or seed in seeds:
        raise ParamsError(f"{where}: expected distinct seeds other than seed = {seed}, got "
                          f"{list(seeds)}")  # fmt: skip
    return seeds


@dataclass(frozen=True)
class UnsupervisedConfig:
    """Parsed ``unsupervised:`` settings (defaults in ``_DEFAULTS``; see the module docstring).

    Attributes:
        clusters: ``K`` matched by the Hungarian algorithm (the number of classes).
        majority_clusters: ``K > C`` matched by majority vote, or 0 to skip.
        stride, levels: node grid and taps (:func:`~cheeger.unsupervised.node_features`).
        seed: every random draw of the main fit (its scores, timings, figures and fidelity).
        repeat_seeds: further seeds: every route fitted and scored again with each, for the
            spread of its scores over seeds (``seed`` and these).
        limit: images per split (``None``: all).
        kernel, kmeans, eigsh, neuralef, fidelity: the sub-sections, as dicts.
    """

    clusters: int
    majority_clusters: int
    stride: int
    levels: tuple[int, ...]
    seed: int
    repeat_seeds: tuple[int, ...]
    limit: int | None
    kernel: dict[str, Any] = field(default_factory=dict)
    kmeans: dict[str, Any] = field(default_factory=dict)
    eigsh: dict[str, Any] = field(default_factory=dict)
    neuralef: dict[str, Any] = field(default_factory=dict)
    fidelity: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], profile: str | None = None,
                    origin: str = "params.yaml") -> UnsupervisedConfig:  # fmt: skip
        """Build from parsed params (section, then the profile's overrides).

        Raises:
            ParamsError: an unknown key or a malformed value, its path named.
        """
        section = params.get("unsupervised") or {}
        if not isinstance(section, Mapping):
            raise ParamsError(f"{origin}: unsupervised: expected a mapping, got {section!r}")
        merged = _merge(_DEFAULTS, section, f"{origin}: unsupervised")
        block = active_profile(params, profile, origin=origin)
        name = block.pop("name")
        over = block.get("unsupervised") or {}
        merged = _merge(merged, over, f"{origin}: profiles.{name}.unsupervised")
        w = f"{origin}: unsupervised"
        kern, nef = merged["kernel"], merged["neuralef"]
        kernel = {"k": _int(kern["k"], f"{w}.kernel.k"),
                  "alpha": _float(kern["alpha"], f"{w}.kernel.alpha"),
                  "pixel_k": tuple(_int(v, f"{w}.kernel.pixel_k") for v in kern["pixel_k"]),
                  "position_weights": tuple(_float(v, f"{w}.kernel.position_weights")
                                            for v in kern["position_weights"])}  # fmt: skip
        if len(kernel["pixel_k"]) != len(kernel["position_weights"]):
            raise ParamsError(f"{w}.kernel: pixel_k and position_weights differ in length")
        neuralef = {"beta": _float(nef["beta"], f"{w}.neuralef.beta"),
                    "epochs": _int(nef["epochs"], f"{w}.neuralef.epochs"),
                    "batch_images": _int(nef["batch_images"], f"{w}.neuralef.batch_images"),
                    "lr": _float(nef["lr"], f"{w}.neuralef.lr"),
                    "hidden": _int(nef["hidden"], f"{w}.neuralef.hidden"),
                    "layers": _int(nef["layers"], f"{w}.neuralef.layers", 0),
                    "tau": tuple(_float(v, f"{w}.neuralef.tau") for v in nef["tau"])}  # fmt: skip
        if len(neuralef["tau"]) != 2 or min(neuralef["tau"]) <= 0:
            raise ParamsError(f"{w}.neuralef.tau: expected [start, end], both > 0")
        widest = max(int(merged["clusters"]), int(merged["majority_clusters"] or 0))
        if neuralef["hidden"] < widest:  # psi's orthonormal head has K <= hidden rows
            raise ParamsError(f"{w}.neuralef.hidden: expected an int >= the clusters "
                              f"({widest}: clusters, majority_clusters), got "
                              f"{neuralef['hidden']}")  # fmt: skip
        limit = merged["limit"]
        return cls(
            clusters=_int(merged["clusters"], f"{w}.clusters", 2),
            majority_clusters=_int(merged["majority_clusters"], f"{w}.majority_clusters", 0),
            stride=_int(merged["stride"], f"{w}.stride"),
            levels=tuple(_int(v, f"{w}.levels", 0) for v in merged["levels"]),
            seed=_int(merged["seed"], f"{w}.seed", 0),
            repeat_seeds=_seeds(merged["repeat_seeds"], merged["seed"], f"{w}.repeat_seeds"),
            limit=None if limit is None else _int(limit, f"{w}.limit"),
            kernel=kernel,
            kmeans={"sample_per_image": _int(merged["kmeans"]["sample_per_image"],
                                             f"{w}.kmeans.sample_per_image"),
                    "iters": _int(merged["kmeans"]["iters"], f"{w}.kmeans.iters")},
            eigsh={"eigenvectors": _int(merged["eigsh"]["eigenvectors"],
                                        f"{w}.eigsh.eigenvectors"),
                   "segments": _int(merged["eigsh"]["segments"], f"{w}.eigsh.segments")},
            neuralef=neuralef,
            fidelity={"batches": _int(merged["fidelity"]["batches"], f"{w}.fidelity.batches")},
        )  # fmt: skip
