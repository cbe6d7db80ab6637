from __future__ import annotations

import numpy as np
import pytest

from cnnkit.games.session_tools import rng_from_meta, rng_to_meta, wilson_interval, win_rate


@pytest.mark.parametrize("k,n", [(8, 10), (1, 20), (37, 40)])
def test_wilson_interval_matches_scipy(k: int, n: int):
    from scipy.stats import binomtest

    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(ref.low, abs=1e-3) and hi == pytest.approx(ref.high, abs=1e-3)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0


def test_win_rate_counts():
    r = win_rate([1.0, 0.0, -1.0, 1.0], "random")
    assert r["win_rate_vs_random"] == 0.5 and r["draw_rate_vs_random"] == 0.25


def test_numpy_generator_round_trip():
    rng = np.random.RandomState(5)
    rng.rand(7)
    meta, keys = rng_to_meta(rng)
    again = rng_from_meta(meta, keys)
    assert np.array_equal(rng.rand(5), again.rand(5))
