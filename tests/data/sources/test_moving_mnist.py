"""Moving MNIST: the bounce, the generator's determinism, motion labels that a single frame cannot give."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit.config.schema import DataConfig
from cnnkit.data import build_data
from cnnkit.data.sources.moving_mnist import DIRECTIONS, bounce_trajectories, make_moving_mnist
from cnnkit.errors import ConfigError


def _square_sprites(n: int = 5, s: int = 6) -> tuple[np.ndarray, np.ndarray]:
    return np.full((n, s, s), 255, dtype=np.uint8), np.arange(n)


def test_bounce_reflects_the_overshoot_by_hand():
    # limit 10, start 8, speed +3: 8 -> 11 mirrored to 9 (velocity -3) -> 6 -> 3 -> 0 -> -3 mirrored to 3.
    traj = bounce_trajectories(np.array([[8.0, 0.0]]), np.array([[3.0, 0.0]]), 7, np.array([10.0, 10.0]))
    assert traj[:, 0, 0].tolist() == [8, 9, 6, 3, 0, 3, 6]


def test_bounce_keeps_points_inside_and_the_speed_constant():
    rng = np.random.default_rng(0)
    start = rng.uniform(0, 20, size=(500, 2))
    theta = rng.uniform(0, 2 * np.pi, size=500)
    vel = np.stack([np.sin(theta), np.cos(theta)], -1) * 2.5
    traj = bounce_trajectories(start, vel, 40, np.array([20.0, 20.0]))
    assert traj.min() >= 0 and traj.max() <= 20
    # Per axis, every step moves by exactly |v| (a reflection folds the step, it does not shorten it)
    # except where it folds: there the step is shorter. Away from the walls, the speed is exact.
    steps = np.abs(np.diff(traj, axis=0))
    inner = (traj[:-1] > 3) & (traj[:-1] < 17) & (traj[1:] > 3) & (traj[1:] < 17)
    np.testing.assert_allclose(steps[inner], np.broadcast_to(np.abs(vel), steps.shape)[inner], atol=1e-9)


def test_generator_is_seeded_and_draws_each_direction_about_equally():
    sprites, labels = _square_sprites()
    a, ya = make_moving_mnist(sprites, labels, n=400, frames=6, canvas=(20, 20), digit_size=6, speed=2.0, seed=3)
    b, yb = make_moving_mnist(sprites, labels, n=400, frames=6, canvas=(20, 20), digit_size=6, speed=2.0, seed=3)
    c, _ = make_moving_mnist(sprites, labels, n=400, frames=6, canvas=(20, 20), digit_size=6, speed=2.0, seed=4)
    assert a.shape == (400, 1, 6, 20, 20) and a.dtype == np.uint8
    assert np.array_equal(a, b) and np.array_equal(ya, yb) and not np.array_equal(a, c)
    counts = np.bincount(ya, minlength=4)
    assert counts.min() >= 60  # multinomial(400, 1/4): expected 100, sd 8.7; 60 is 4.6 sd below
    # A 6x6 white sprite: 36 lit pixels in every frame (one sprite, fully inside the canvas).
    assert (a > 0).sum(axis=(1, 3, 4)).min() == 36 and (a > 0).sum(axis=(1, 3, 4)).max() == 36


def _centroids(x: np.ndarray, t: int) -> np.ndarray:
    """Row and column centroid of the lit pixels of frame ``t``, per clip: ``(N, 2)``."""
    lit = x[:, 0, t] > 0
    r = np.arange(x.shape[-1])
    rows, cols = lit.any(-1), lit.any(-2)
    return np.stack([(rows * r).sum(-1) / rows.sum(-1), (cols * r).sum(-1) / cols.sum(-1)], -1)


def test_direction_label_is_the_direction_of_motion_at_the_middle_frame():
    sprites, labels = _square_sprites()
    clips, y = make_moving_mnist(sprites, labels, n=300, frames=3, canvas=(40, 40), digit_size=6, speed=1.5, seed=0)
    d = _centroids(clips, 2) - _centroids(clips, 1)  # the step leaving the middle frame (3 // 2 = 1)
    up, right = np.isin(y, [0, 1]), np.isin(y, [0, 3])
    # Rounding to pixels may give a zero step on one axis; a wrong sign only where the step bounced.
    ok = np.where(up, d[:, 0] <= 0, d[:, 0] >= 0) & np.where(right, d[:, 1] >= 0, d[:, 1] <= 0)
    assert ok.mean() > 0.9


def test_the_middle_frame_alone_does_not_tell_the_direction():
    # Position features only: a classifier fitted on the middle frame is at chance (the position is
    # independent of the direction at that frame), one fitted on two frames is far above it.
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import PolynomialFeatures

    sprites, labels = _square_sprites()
    kw = dict(frames=8, canvas=(24, 24), digit_size=6, speed=2.0)
    x_tr, y_tr = make_moving_mnist(sprites, labels, n=2000, seed=0, **kw)
    x_te, y_te = make_moving_mnist(sprites, labels, n=1000, seed=1, **kw)
    poly = PolynomialFeatures(3)  # lets the classifier use "near a wall" as well as "left of centre"
    one = lambda x: poly.fit_transform(_centroids(x, 4) / 18)  # noqa: E731
    two = lambda x: np.concatenate([one(x), _centroids(x, 5) - _centroids(x, 4)], 1)  # noqa: E731
    acc_one = LogisticRegression(max_iter=2000).fit(one(x_tr), y_tr).score(one(x_te), y_te)
    acc_two = LogisticRegression(max_iter=2000).fit(two(x_tr), y_tr).score(two(x_te), y_te)
    # 1000 test clips: chance is 0.25 +- 0.014 (sd); 0.31 is 4 sd above.
    assert acc_one < 0.31 and acc_two > 0.85, (acc_one, acc_two)


def test_build_data_generates_at_the_model_input_size():
    cfg = DataConfig(name="moving-mnist", sprites="digits", n_train=40, n_test=12, batch_size=8)
    b = build_data(cfg, input_shape=(1, 5, 16, 16), device="cpu", seed=0)
    assert b.kind == "clip" and b.input_shape == (1, 5, 16, 16) and b.class_names == DIRECTIONS
    assert len(b.train.labels) == 40 and len(b.test.labels) == 12
    assert b.meta["sprites"] == "digits" and b.meta["digit_size"] == 7
    x, _ = next(iter(b.train))
    assert x.shape == (8, 1, 5, 16, 16)
    # Options override the model's size; the model is then built for it (model_kwargs).
    cfg = DataConfig(name="moving-mnist", sprites="digits", n_train=8, n_test=4, frames=3, canvas=12)
    assert build_data(cfg, input_shape=(1, 5, 16, 16), device="cpu", seed=0).model_kwargs == {"input_size": (3, 12, 12)}


def test_bad_options_are_one_line_errors():
    with pytest.raises(ValueError, match="config key data.label: expected one of 'direction' or 'digit'"):
        DataConfig(name="moving-mnist", label="colour")
    with pytest.raises(ConfigError, match="not a clip"):
        build_data(DataConfig(name="moving-mnist", sprites="digits"), input_shape=(1, 28, 28), device="cpu", seed=0)
    with pytest.raises(ConfigError, match="digit_size"):
        make_moving_mnist(*_square_sprites(), n=2, frames=2, canvas=(8, 8), digit_size=10, speed=1.0)
