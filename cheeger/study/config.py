"""What the study runs: heads x seeds, the ablation grid, the evaluated splits (``study:``).

The pipeline (``Snakefile``) and the report read the study's shape from here, so both see the
same runs. Settings come from ``params.yaml``: the shared ``study:`` section, deep-merged with the
active profile's ``study:`` override (an ablation axis named there replaces the shared one),
and the profile's own ``seeds``, ``ablation_seeds`` and
``threads``. Types and ranges are checked by the JSON schema (``load_params``); this module checks
what a schema cannot (ablation seeds among the seeds, an ablated key set in ``params.yaml``) and
raises :class:`~cheeger.config.ParamsError` naming the key.

An ablation axis varies one ``params.yaml`` key of the ablated head's runs over a list of values
(``study.ablation.axes.alpha: {key: spectral.alpha, values: [0.0, 1.0]}``); every other setting
is the main runs', so the main runs with the ablation seeds are each axis' baseline point and a
value equal to the baseline is not trained twice.

A trial (``study.trial: {name, head, set: {key: value}}``) is the one change tried after the
ablations within the main protocol: its head retrained with every seed on the changed settings
and scored on the report split beside the compared heads.

Controls (``study.controls: [{name, head, set, seeds, why}, ...]``) are changes of the same kind
that say what a head's part does (the spectral head on the plain pixel grid, or without its
graph term): each is its head retrained on a params variant with the listed seeds (default: every
main seed), scored on the report split and tabled beside the compared heads. An ablation axis a
profile writes with ``values: []`` is switched off for that profile.

Example:
    >>> params = {"profile": "toy", "profiles": {"toy": {"dataset": "synthetic", "root": None,
    ...           "resolution": [64, 80], "seeds": [0, 1]}}, "spectral": {"alpha": 0.1},
    ...           "study": {"ablation": {"axes": {"alpha": {"key": "spectral.alpha",
    ...                                                     "values": [0.0, 0.1, 1.0]}}}}}
    >>> study = StudyConfig.from_params(params)
    >>> study.runs()
    [('conv', 0), ('conv', 1), ('spectral', 0), ('spectral', 1)]
    >>> study.axes[0].baseline, study.axes[0].values, study.ablation_runs()
    (0.1, (0.0, 1.0), [('alpha', '0.0', 0), ('alpha', '1.0', 0)])
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cheeger.config import DataConfig, ParamsError, active_profile

__all__ = [
    "DEFAULT_HEADS",
    "TRAINING_SECTIONS",
    "AblationAxis",
    "Control",
    "StudyConfig",
    "Trial",
    "deep_merge",
    "format_value",
    "get_key",
    "study_section",
]

#: The heads a study compares when ``study.heads`` does not name them.
DEFAULT_HEADS = ("conv", "spectral")

#: Sections of params.yaml a training run reads (an ablation may vary a key of these only).
TRAINING_SECTIONS = ("model", "train", "spectral", "evaluate", "data")
_SLUG = re.compile(r"^[A-Za-z0-9_.+-]+$")
_MISSING = object()  # get_key's "no default"
_ABSENT = object()  # a key set nowhere


def deep_merge(base: Mapping[str, Any] | None, override: Mapping[str, Any] | None) -> dict:
    """``base`` updated by ``override``, recursively for mappings (lists are replaced).

    Example:
        >>> deep_merge({"a": {"x": 1, "y": 2}, "b": [1]}, {"a": {"y": 3}, "b": [2]})
        {'a': {'x': 1, 'y': 3}, 'b': [2]}
    """
    merged = copy.deepcopy(dict(base or {}))
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def get_key(tree: Mapping[str, Any], key: str, default: Any = _MISSING) -> Any:
    """The value at dotted ``key`` (``"spectral.head.eps"``) of nested mappings.

    Raises:
        KeyError: the key is absent and no ``default`` was given.
    """
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            if default is _MISSING:
                raise KeyError(key)
            return default
        node = node[part]
    return node


def format_value(value: Any) -> str:
    """A value as it appears in paths and tables: ``repr`` of floats, so distinct values stay
    distinct (``1e-05``, ``0.3``), lower-case booleans, strings as they are.

    Raises:
        ValueError: a string that is not a safe path component.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if not _SLUG.match(text):
        raise ValueError(f"ablation value {value!r}: expected letters, digits or _.+- only")
    return text


def study_section(
    params: Mapping[str, Any], profile: str | None = None, *, origin: str = "params.yaml"
) -> dict[str, Any]:
    """``study:`` deep-merged with the profile's ``study:`` override.

    An ablation axis the profile names replaces the shared axis whole: an axis is one unit
    (a profile narrowing ``values`` must not inherit ``with`` options of values it dropped); so
    does a profile's ``trial``.
    """
    block = active_profile(params, profile, origin=origin)
    override = block.get("study") or {}
    merged = deep_merge(params.get("study"), override)
    axes = (override.get("ablation") or {}).get("axes") or {}
    for name, axis in axes.items():
        merged["ablation"]["axes"][name] = copy.deepcopy(axis)
    if "trial" in override:  # a trial is one unit too: never a blend of two changes
        merged["trial"] = copy.deepcopy(override["trial"])
    return merged  # (controls are a list: deep_merge already replaces it whole)


@dataclass(frozen=True)
class AblationAxis:
    """One ablation axis: ``key`` takes each of ``values`` (the baseline value excluded).

    Attributes:
        name: axis name (a path component, e.g. ``alpha``).
        key: dotted params key it varies, e.g. ``spectral.alpha``.
        values: the values trained, in the order written.
        baseline: the value ``params.yaml`` gives ``key`` (that of the main runs).
        with_key: a second key set together with some values (e.g. a filter's options).
        with_values: value slug -> ``with_key``'s value for it (absent: left as it is).
    """

    name: str
    key: str
    values: tuple[Any, ...]
    baseline: Any
    with_key: str | None = None
    with_values: Mapping[str, Any] = field(default_factory=dict)

    def settings(self, slug: str) -> dict[str, Any]:
        """The params keys an ablation run with value ``slug`` changes, and their values.

        Raises:
            KeyError: no value of this axis has that slug.
        """
        settings = {self.key: self.value(slug)}
        if self.with_key is not None and slug in self.with_values:
            settings[self.with_key] = self.with_values[slug]
        return settings

    def value(self, slug: str) -> Any:
        """The value whose :func:`format_value` is ``slug`` (baseline included).

        Raises:
            KeyError: no value of this axis has that slug.
        """
        for value in (*self.values, self.baseline):
            if format_value(value) == slug:
                return value
        raise KeyError(f"ablation axis {self.name!r} has no value {slug!r}")


@dataclass(frozen=True)
class Trial:
    """One change tried within the main protocol (``study.trial``).

    Attributes:
        name: the trial's name (a path component and its label in tables, e.g. ``stride4``).
        head: the head retrained (with every seed of the profile).
        settings: dotted params key -> its value in the trial; every other setting is the
            main runs'.
        why: the reason for trying it, quoted in the report.
    """

    name: str
    head: str
    settings: Mapping[str, Any]
    why: str = ""


@dataclass(frozen=True)
class Control:
    """One control run in the main protocol (an entry of ``study.controls``).

    Attributes:
        name: the control's name (a path component and its label in tables, e.g.
            ``plain_grid``).
        head: the head retrained.
        settings: dotted params key -> its value in the control; every other setting is the
            main runs'.
        seeds: the seeds it is trained with (a subset of the main seeds).
        why: what the control tells, quoted in the report.
    """

    name: str
    head: str
    settings: Mapping[str, Any]
    seeds: tuple[int, ...]
    why: str = ""


@dataclass(frozen=True)
class StudyConfig:
    """The study's runs for one profile.

    Attributes:
        profile: profile name.
        heads: compared heads; each is trained with every seed.
        seeds: training seeds of the compared heads.
        threads: torch threads of each training/evaluation job.
        ablation_head: the head the ablation axes vary.
        ablation_seeds: seeds of the ablation runs (a subset of ``seeds``).
        ablation_split: split the ablation runs are scored on (``val``: never tune on test).
        axes: the ablation axes.
        splits: the profile's splits among ``val`` and ``test``.
        report_split: the split of the headline comparison (``test``, else ``val``): every main
            run is evaluated on it.
        trial: the change tried after the ablations, or ``None``.
        controls: the controls (``study.controls``), in the order written.
    """

    profile: str
    heads: tuple[str, ...]
    seeds: tuple[int, ...]
    threads: int
    ablation_head: str
    ablation_seeds: tuple[int, ...]
    ablation_split: str
    axes: tuple[AblationAxis, ...]
    splits: tuple[str, ...]
    report_split: str
    trial: Trial | None = None
    controls: tuple[Control, ...] = ()

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], profile: str | None = None, *, origin: str = "params.yaml"
    ) -> StudyConfig:
        """Build for ``profile`` (default: the active one) from parsed, schema-checked params.

        Raises:
            ParamsError: inconsistent settings, the key named.
        """
        block = active_profile(params, profile, origin=origin)
        name = block["name"]
        where = f"profiles.{name}"
        study = study_section(params, name, origin=origin)
        ablation = study.get("ablation", {})
        if "seeds" not in block:
            raise ParamsError(f"{origin}: {where}.seeds: missing; expected a list of seeds")
        seeds = tuple(block["seeds"])
        ablation_seeds = tuple(block.get("ablation_seeds", seeds[:1]))
        if not set(ablation_seeds) <= set(seeds):
            raise ParamsError(f"{origin}: {where}.ablation_seeds: expected a subset of {where}."
                              f"seeds {list(seeds)} (the main runs are the ablation baseline), "
                              f"got {list(ablation_seeds)}")  # fmt: skip
        heads = tuple(study.get("heads", DEFAULT_HEADS))
        ablation_head = ablation.get("head", "spectral")
        # an axis written with `values: []` is off for this profile (a profile cannot delete a
        # shared axis from the merged section otherwise)
        axes = tuple(_axis(params, block, axis, spec, origin)
                     for axis, spec in ablation.get("axes", {}).items()
                     if spec.get("values") != [])  # fmt: skip
        if axes and ablation_head not in heads:
            raise ParamsError(f"{origin}: study.ablation.head: expected one of study.heads "
                              f"{list(heads)}, got {ablation_head!r}")  # fmt: skip
        data_splits = DataConfig.from_params(params, name, origin=origin).splits
        splits = tuple(s for s in ("val", "test") if s in data_splits)
        if not splits:
            raise ParamsError(f"{origin}: {where}.splits: expected val or test among "
                              f"{list(data_splits)}: nothing to evaluate on")  # fmt: skip
        ablation_split = ablation.get("split", "val")
        if axes and ablation_split not in data_splits:
            raise ParamsError(f"{origin}: study.ablation.split: expected one of the profile's "
                              f"splits {list(data_splits)}, got {ablation_split!r}")  # fmt: skip
        trial = study.get("trial")
        if trial is not None:
            trial = _trial(params, block, trial, heads, ablation_head, origin)
        controls = _controls(params, block, study.get("controls") or [], heads, seeds,
                             ablation_head, trial, origin)  # fmt: skip
        return cls(
            profile=name, heads=heads, seeds=seeds, threads=int(block.get("threads", 1)),
            ablation_head=ablation_head, ablation_seeds=ablation_seeds,
            ablation_split=ablation_split, axes=axes, splits=splits,
            report_split="test" if "test" in splits else "val", trial=trial,
            controls=controls,
        )  # fmt: skip

    def runs(self) -> list[tuple[str, int]]:
        """``(head, seed)`` of every main run."""
        return [(head, seed) for head in self.heads for seed in self.seeds]

    def evaluations(self) -> list[tuple[str, int, str]]:
        """``(head, seed, split)`` of every evaluation of a main run: all runs on the report
        split, and the ablation baselines (the ablated head's ablation seeds) on the ablation
        split."""
        done = [(head, seed, self.report_split) for head, seed in self.runs()]
        if self.axes and self.ablation_split != self.report_split:
            done += [(self.ablation_head, seed, self.ablation_split)
                     for seed in self.ablation_seeds]  # fmt: skip
        return done

    def ablation_runs(self) -> list[tuple[str, str, int]]:
        """``(axis, value slug, seed)`` of every ablation run (baselines excluded)."""
        return [(axis.name, format_value(value), seed) for axis in self.axes
                for value in axis.values for seed in self.ablation_seeds]  # fmt: skip

    def trial_runs(self) -> list[tuple[str, int]]:
        """``(trial name, seed)`` of every trial run: one per seed of the main runs."""
        return [] if self.trial is None else [(self.trial.name, seed) for seed in self.seeds]

    def control_runs(self) -> list[tuple[str, int]]:
        """``(control name, seed)`` of every control run, controls in the order written."""
        return [(control.name, seed) for control in self.controls for seed in control.seeds]

    def control(self, name: str) -> Control:
        """The control called ``name``.

        Raises:
            KeyError: no such control.
        """
        for control in self.controls:
            if control.name == name:
                return control
        raise KeyError(f"no control {name!r}; controls: {[c.name for c in self.controls]}")

    def axis(self, name: str) -> AblationAxis:
        """The axis called ``name``.

        Raises:
            KeyError: no such axis.
        """
        for axis in self.axes:
            if axis.name == name:
                return axis
        raise KeyError(f"no ablation axis {name!r}; axes: {[a.name for a in self.axes]}")


def _axis(
    params: Mapping[str, Any], block: Mapping[str, Any], name: str, spec: Mapping[str, Any],
    origin: str,
) -> AblationAxis:  # fmt: skip
    where = f"study.ablation.axes.{name}"
    key = spec["key"]
    if key.split(".")[0] not in TRAINING_SECTIONS:
        raise ParamsError(f"{origin}: {where}.key: expected a key of a section training reads "
                          f"{list(TRAINING_SECTIONS)}, got {key!r}")  # fmt: skip
    baseline = _baseline(params, block, key, f"{where}.key", origin)
    values = tuple(v for v in spec["values"] if not _same(v, baseline))
    slugs = []
    for value in (*values, baseline):
        try:
            slugs.append(format_value(value))
        except ValueError as error:
            raise ParamsError(f"{origin}: {where}.values: {error}") from None
    if len(set(slugs)) != len(slugs):
        raise ParamsError(f"{origin}: {where}.values: values {slugs} are not distinct")
    companion = spec.get("with", {})
    with_key = companion.get("key")
    # YAML reads a key like 0.3 as a number: compare keys as the slugs of the values
    with_values = {k if isinstance(k, str) else format_value(k): v
                   for k, v in companion.get("values", {}).items()}  # fmt: skip
    if with_key is not None and with_key.split(".")[0] not in TRAINING_SECTIONS:
        raise ParamsError(f"{origin}: {where}.with.key: expected a key of a section training "
                          f"reads {list(TRAINING_SECTIONS)}, got {with_key!r}")  # fmt: skip
    unknown = sorted(set(with_values) - set(slugs[:-1]))
    if unknown:
        raise ParamsError(f"{origin}: {where}.with.values: {unknown} are not ablated values of "
                          f"this axis {slugs[:-1]}")  # fmt: skip
    return AblationAxis(name, key, values, baseline, with_key, with_values)


#: What a trial may change: what training reads and the evaluation does not (the trial is
#: scored exactly as the main runs), and data settings applied after preparation.
_TRIAL_SECTIONS = ("model.", "train.", "spectral.", "data.augment")
#: Profile shorthands that override a train key (a trial setting the key would change nothing).
_SHORTHANDS = {"train.epochs": "epochs", "train.device": "device"}


def _baseline(
    params: Mapping[str, Any], block: Mapping[str, Any], key: str, where: str, origin: str
) -> Any:
    """The main runs' value of ``key``: the profile block's, else the shared section's.

    Raises:
        ParamsError: a profile shorthand (``epochs:``) overrides ``key``, so changing it would
            change nothing; or ``key`` is set nowhere.
    """
    if key in _SHORTHANDS and _SHORTHANDS[key] in block:
        raise ParamsError(f"{origin}: {where}: {key}: the profile's `{_SHORTHANDS[key]}:` "
                          "overrides it; changing it would change nothing")  # fmt: skip
    baseline = get_key(block, key, _ABSENT)
    baseline = get_key(params, key, _ABSENT) if baseline is _ABSENT else baseline
    if baseline is _ABSENT:
        raise ParamsError(f"{origin}: {where}: {key} is not set in params.yaml; write its "
                          "value for the main runs there")  # fmt: skip
    return baseline


def _change(
    params: Mapping[str, Any], block: Mapping[str, Any], spec: Mapping[str, Any],
    heads: tuple[str, ...], ablation_head: str, where: str, kind: str, origin: str,
) -> tuple[str, str, dict[str, Any], str]:  # fmt: skip
    """``(name, head, settings, why)`` of a trial or control ``spec``, checked: its head among
    the heads, its name not a head's, every key one training reads and the evaluation does
    not, set in params.yaml and read by the head, and at least one value changed."""
    name, head = spec["name"], spec.get("head", ablation_head)
    if head not in heads:
        raise ParamsError(f"{origin}: {where}.head: expected one of study.heads {list(heads)}, "
                          f"got {head!r}")  # fmt: skip
    if name in heads:
        raise ParamsError(f"{origin}: {where}.name: {name!r} is a head's name; the tables "
                          f"label the {kind} by its name")  # fmt: skip
    changed = False
    for key, value in spec["set"].items():
        if not key.startswith(_TRIAL_SECTIONS):
            raise ParamsError(f"{origin}: {where}.set: {key}: expected a key under "
                              f"{[s.rstrip('.') for s in _TRIAL_SECTIONS]} (the {kind} is "
                              "evaluated as the main runs are)")  # fmt: skip
        if head != "spectral" and key.startswith("spectral.") and key != "spectral.gamma":
            raise ParamsError(f"{origin}: {where}.set: {key}: the {head} head does not read it")
        baseline = _baseline(params, block, key, f"{where}.set", origin)
        changed = changed or not _same(value, baseline)
    if not changed:
        raise ParamsError(f"{origin}: {where}.set: every value equals the main runs' "
                          f"({dict(spec['set'])}): nothing would change")  # fmt: skip
    return name, head, dict(spec["set"]), " ".join(str(spec.get("why", "")).split())


def _trial(
    params: Mapping[str, Any], block: Mapping[str, Any], spec: Mapping[str, Any],
    heads: tuple[str, ...], ablation_head: str, origin: str,
) -> Trial:  # fmt: skip
    return Trial(*_change(params, block, spec, heads, ablation_head, "study.trial", "trial",
                          origin))  # fmt: skip


def _controls(
    params: Mapping[str, Any], block: Mapping[str, Any], specs: list[Mapping[str, Any]],
    heads: tuple[str, ...], seeds: tuple[int, ...], ablation_head: str, trial: Trial | None,
    origin: str,
) -> tuple[Control, ...]:  # fmt: skip
    """The controls of ``study.controls``, each checked as a trial is, with distinct names
    (also from the trial's: the tables label each by its name) and seeds among the main
    seeds."""
    controls, taken = [], {trial.name} if trial is not None else set()
    for index, spec in enumerate(specs):
        where = f"study.controls[{index}]"
        name, head, settings, why = _change(params, block, spec, heads, ablation_head, where,
                                            "control", origin)  # fmt: skip
        if name in taken:
            raise ParamsError(f"{origin}: {where}.name: {name!r} is taken by another control "
                              "or the trial; each is labelled by its name")  # fmt: skip
        taken.add(name)
        chosen = tuple(spec.get("seeds", seeds))
        if not set(chosen) <= set(seeds):
            raise ParamsError(f"{origin}: {where}.seeds: expected a subset of the profile's "
                              f"seeds {list(seeds)} (the main runs it is compared with), got "
                              f"{list(chosen)}")  # fmt: skip
        controls.append(Control(name, head, settings, chosen, why))
    return tuple(controls)


def _same(a: Any, b: Any) -> bool:
    """Equal values of one type, or equal numbers (``1 == 1.0``; booleans are not numbers)."""
    if type(a) is type(b):
        return a == b
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    return numbers and float(a) == float(b)
