"""snnlab.stats: mean and sd over seeds, bootstrap and paired-t CIs, paired summaries."""
import math
import random

import pytest

from snnlab import stats


def test_mean_sd_hand_values_and_one_value():
    assert stats.mean_sd([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert stats.mean_sd([4.0]) == (4.0, 0.0)
    with pytest.raises(ValueError, match="empty"):
        stats.mean_sd([])


def test_mean_sd_does_not_depend_on_the_order_of_the_runs():
    rng = random.Random(1)
    values = [rng.uniform(80, 99) for _ in range(7)]
    assert all(stats.mean_sd(rng.sample(values, len(values))) == stats.mean_sd(values) for _ in range(20))


def test_paired_t_ci_hand_value():
    # mean 2, sd sqrt(2), n 2: half-width t_{0.975,1} sqrt(2) / sqrt(2) = 12.7062
    mean, lo, hi = stats.paired_t_ci([1.0, 3.0])
    assert mean == 2.0 and hi - mean == pytest.approx(12.7062, rel=1e-4) and mean - lo == pytest.approx(hi - mean)
    _, lo90, hi90 = stats.paired_t_ci([1.0, 3.0], level=0.9)
    assert lo < lo90 < hi90 < hi
    with pytest.raises(ValueError, match="at least 2"):
        stats.paired_t_ci([1.0])


def test_summarise_paired_pairs_by_seed_only():
    runs = [{"cond": c, "seed": s, "acc": a} for c, s, a in
            [("base", 0, 90.0), ("base", 1, 80.0), ("base", 2, 85.0), ("new", 0, 91.0), ("new", 1, 83.0)]]
    out = stats.summarise_paired(runs, value="acc", group="cond", baseline="base")
    assert out["base"] == {"n": 3, "mean": 85.0, "sd": 5.0}
    assert out["new"]["diffs"] == [1.0, 3.0] and out["new"]["diff_mean"] == 2.0     # seed 2 has no partner
    assert out["new"]["t_hi"] - 2.0 == pytest.approx(12.7062, rel=1e-4)
    assert math.isclose(out["new"]["sd"], math.sqrt(32))
