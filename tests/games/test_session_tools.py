from __future__ import annotations

import numpy as np
import pytest

from cnnkit.games.session_tools import rng_from_meta, rng_to_meta, wilson_interval, win_rate


def test_wilson_interval_published_value():
    # 8 successes in 10: 95% Wilson interval 0.490 - 0.943 (Newcombe 1998, Table I, method 3, as often quoted).
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
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
