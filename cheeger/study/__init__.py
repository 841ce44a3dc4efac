"""The study on top of the package: its runs and files, ablation variants, the eigensolver and
gradient sweeps, seed statistics and the report (``cheeger variant | gradients | scaling |
report``).

Names are re-exported lazily (PEP 562): the ``Snakefile`` imports :mod:`cheeger.study.config`
and :mod:`cheeger.study.layout` at every DAG evaluation, and they must not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "AblationAxis",
    "Control",
    "GradientsConfig",
    "Layout",
    "ReportConfig",
    "ScalingConfig",
    "StudyConfig",
    "StudyFileError",
    "Trial",
    "code_digest",
    "collect_controls",
    "controls_table",
    "diagnostics_table",
    "gradient_sweep",
    "job_fingerprint",
    "make_report",
    "params_variant",
    "protocol_record",
    "run_scaling",
    "t_interval",
    "update_fingerprint",
    "welch_difference",
    "write_trial",
    "write_variant",
]

_SOURCES = {
    "AblationAxis": "config",
    "Control": "config",
    "GradientsConfig": "gradients",
    "Layout": "layout",
    "ReportConfig": "collect",
    "ScalingConfig": "scaling",
    "StudyConfig": "config",
    "StudyFileError": "layout",
    "Trial": "config",
    "code_digest": "fingerprint",
    "collect_controls": "controls",
    "controls_table": "controls",
    "diagnostics_table": "diagnostics",
    "gradient_sweep": "gradients",
    "job_fingerprint": "fingerprint",
    "make_report": "report",
    "params_variant": "variants",
    "protocol_record": "protocols",
    "run_scaling": "scaling",
    "t_interval": "statistics",
    "welch_difference": "statistics",
    "update_fingerprint": "fingerprint",
    "write_trial": "trial",
    "write_variant": "variants",
}


def __getattr__(name: str) -> Any:
    if name not in _SOURCES:
        raise AttributeError(f"module 'cheeger.study' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cheeger.study.{_SOURCES[name]}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
