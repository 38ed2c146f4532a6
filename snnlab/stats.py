"""Summary statistics of seeded studies: mean and sd over seeds, and confidence intervals for paired
differences (one seed = the same split, initialisation and data order under both conditions).

Used by the DA-SSDP paired study (:mod:`snnlab.training.study`, ``scripts/dassdp_study.py``, notebook 03) and
the Mozafari study (``scripts/mozafari_study.py``, the tables of notebook 02). Means are exactly rounded sums
(``statistics.fmean``), so a summary does not depend on the order in which the runs finished.
"""
import math
import statistics
from typing import Iterable

import numpy as np

from .utils import check_float, check_int


def mean_sd(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (divisor n - 1) of ``values``; the sd of a single value is 0."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("values must not be empty")
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def bootstrap_ci(diffs, *, n_boot: int = 10_000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Mean of paired differences and its percentile-bootstrap confidence interval (seeded): the
    ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the means of ``n_boot`` resamples."""
    d = np.asarray(diffs, dtype=float)
    if d.size == 0:
        raise ValueError("diffs must not be empty")
    check_float("level", level, minimum=0.5, maximum=0.999)
    check_int("n_boot", n_boot, minimum=1)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return statistics.fmean(d.tolist()), float(lo), float(hi)


def paired_t_ci(diffs, *, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of paired differences and its Student-t confidence interval:
    ``mean +- t_{(1 + level)/2, n-1} sd / sqrt(n)``. Wider than the bootstrap for a handful of seeds, and
    the honest one there (the percentile bootstrap under-covers for n < ~10)."""
    from scipy.stats import t as student_t

    check_float("level", level, minimum=0.5, maximum=0.999)
    diffs = [float(d) for d in diffs]
    if len(diffs) < 2:
        raise ValueError(f"a t interval needs at least 2 differences, got {len(diffs)}")
    mean, sd = mean_sd(diffs)
    half = float(student_t.ppf(1 - (1 - level) / 2, len(diffs) - 1)) * sd / math.sqrt(len(diffs))
    return mean, mean - half, mean + half


def summarise_paired(runs: list[dict], *, value: str, group: str, baseline: str, pair: str = "seed") -> dict:
    """Per ``group`` (a condition): ``n``, ``mean`` and ``sd`` of ``value``; for every group but ``baseline``,
    the differences to ``baseline`` paired by ``pair`` (``diffs``), their mean with the 95 % bootstrap CI
    (``diff_mean``, ``diff_lo``, ``diff_hi``) and, from two pairs on, the paired-t CI (``t_lo``, ``t_hi``)."""
    by: dict = {}
    for r in runs:
        by.setdefault(r[group], {})[r[pair]] = r[value]
    out = {}
    for name, values in by.items():
        mean, sd = mean_sd(values.values())
        row = {"n": len(values), "mean": mean, "sd": sd}
        if name != baseline and baseline in by:
            diffs = [values[k] - by[baseline][k] for k in values if k in by[baseline]]
            if diffs:
                row["diff_mean"], row["diff_lo"], row["diff_hi"] = bootstrap_ci(diffs)
                row["diffs"] = diffs
                if len(diffs) > 1:
                    _, row["t_lo"], row["t_hi"] = paired_t_ci(diffs)
        out[name] = row
    return out
