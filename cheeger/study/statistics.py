r"""Seed statistics: means with Student-t confidence intervals, and Welch's head comparison.

Every number the report gives for a head is a mean over training seeds ``x_1..x_n`` with

.. math::

    \bar x \pm t_{1-(1-c)/2,\,n-1}\; s / \sqrt{n},

``s`` the sample standard deviation (``ddof = 1``); with one seed the interval is undefined (NaN),
never zero. Two heads are compared by the difference of their means with Welch's interval
(unequal variances, Welch-Satterthwaite degrees of freedom): runs of different heads share a seed
number but not their random streams beyond it, so they are not treated as paired. The report
calls a difference *beyond seed noise* only when both criteria agree: the two heads' own
intervals do not overlap, and Welch's interval of the difference excludes zero.

Example:
    >>> row = t_interval([0.50, 0.52, 0.54])
    >>> round(row["mean"], 3), round(row["std"], 3), round(row["ci_low"], 3), row["n"]
    (0.52, 0.02, 0.47, 3)
    >>> cmp = welch_difference([0.50, 0.52, 0.54], [0.60, 0.61, 0.62])
    >>> round(cmp["difference"], 3), cmp["beyond_noise"]
    (0.09, True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["summarize", "t_interval", "welch_difference"]


def _finite(values: Iterable[float | None]) -> np.ndarray:
    array = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return array[np.isfinite(array)]


def t_interval(values: Sequence[float | None], confidence: float = 0.95) -> dict[str, float]:
    """Mean, std, standard error and the t confidence interval of ``values``.

    ``None`` and NaN entries (a metric undefined for a run) are left out and ``n`` counts the
    rest.

    Returns:
        ``{"n", "mean", "std", "sem", "ci_low", "ci_high", "ci_half"}``; std and the interval
        are NaN when ``n < 2``, everything but ``n`` when ``n == 0``.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"t_interval: confidence must be in (0, 1), got {confidence}")
    x = _finite(values)
    n = len(x)
    mean = float(x.mean()) if n else math.nan
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    sem = std / math.sqrt(n) if n > 1 else math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sem if n > 1 else math.nan
    return {"n": n, "mean": mean, "std": std, "sem": sem,
            "ci_low": mean - half, "ci_high": mean + half, "ci_half": half}  # fmt: skip


def welch_difference(
    a: Sequence[float | None], b: Sequence[float | None], confidence: float = 0.95
) -> dict[str, float | bool]:
    """``mean(b) - mean(a)`` with Welch's confidence interval and two-sided p-value.

    Returns:
        ``{"difference", "ci_low", "ci_high", "dof", "p_value", "overlap", "beyond_noise"}``:
        ``overlap`` says whether the two groups' own t intervals overlap; ``beyond_noise`` is
        true only when they do not AND Welch's interval excludes zero. Undefined (NaN, and
        ``beyond_noise`` false) with fewer than two values in either group.
    """
    xa, xb = _finite(a), _finite(b)
    ia, ib = t_interval(xa, confidence), t_interval(xb, confidence)
    difference = ib["mean"] - ia["mean"]
    result = {"difference": difference, "ci_low": math.nan, "ci_high": math.nan,
              "dof": math.nan, "p_value": math.nan, "overlap": True,
              "beyond_noise": False}  # fmt: skip
    if len(xa) < 2 or len(xb) < 2:
        return result
    va, vb = ia["sem"] ** 2, ib["sem"] ** 2
    se = math.sqrt(va + vb)
    if se == 0:  # identical runs in both groups: any difference is exact
        dof, half, p = math.inf, 0.0, 0.0 if difference != 0 else 1.0
    else:
        dof = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1))
        half = float(stats.t.ppf(0.5 + confidence / 2, dof)) * se
        p = float(2 * stats.t.sf(abs(difference) / se, dof))
    overlap = not (ia["ci_high"] < ib["ci_low"] or ib["ci_high"] < ia["ci_low"])
    low, high = difference - half, difference + half
    result.update(ci_low=low, ci_high=high, dof=dof, p_value=p, overlap=overlap,
                  beyond_noise=(not overlap) and (low > 0 or high < 0))  # fmt: skip
    return result


def summarize(
    frame: pd.DataFrame, by: Sequence[str], value: str = "value", confidence: float = 0.95
) -> pd.DataFrame:
    """:func:`t_interval` of column ``value`` for every group of ``by`` (one row per group).

    Example:
        >>> frame = pd.DataFrame({"head": ["a", "a", "b"], "value": [1.0, 3.0, 2.0]})
        >>> summarize(frame, ["head"])[["head", "n", "mean"]].to_dict("records")
        [{'head': 'a', 'n': 2, 'mean': 2.0}, {'head': 'b', 'n': 1, 'mean': 2.0}]
    """
    rows = []
    for key, group in frame.groupby(list(by), sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key, strict=True)),
                     **t_interval(group[value].tolist(), confidence)})  # fmt: skip
    columns = [*by, "n", "mean", "std", "sem", "ci_low", "ci_high", "ci_half"]
    return pd.DataFrame(rows, columns=columns)
