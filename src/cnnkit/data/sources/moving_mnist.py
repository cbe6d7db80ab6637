"""Moving MNIST (Srivastava, Mansimov & Salakhutdinov 2015, Sec. 3): digits bouncing inside a canvas,
generated from a seed, with labels that need motion.

Each clip places ``num_digits`` sprites at uniform random positions inside an ``H x W`` canvas (64x64 in
the paper; by default the model's input size) and moves each at a fixed ``speed`` (pixels per frame) in a
random direction; a sprite that reaches an edge reflects off it (the velocity component normal to the
edge changes sign). Overlapping sprites are merged by the pixel-wise maximum.

Labels (``label``):

- ``direction`` (default): the quadrant of the first sprite's direction of motion *at the middle frame*
  (from frame ``T // 2`` to ``T // 2 + 1``), 4 classes (up-right, up-left, down-left, down-right); angles
  are drawn uniformly inside a random quadrant, at least ``margin`` degrees from the axes. Why the middle
  frame: a reflecting motion at a fixed speed maps the uniform distribution of (position, direction) onto
  itself, so a sprite started uniformly at random has, at every frame, a position independent of its
  direction *at that frame* (not of its initial direction: after k steps, positions near the wall it
  moves towards are twice as likely). A model that sees the middle frame alone is therefore at chance
  (1/4), exactly; one that compares frames is not. That is the point of this data set.
- ``digit``: the class of the first sprite (appearance; a single frame answers it), for contrast.

Sprites: MNIST's files when they are present (searched as ``mnist`` is), otherwise Fashion-MNIST's items,
otherwise scikit-learn's bundled 8x8 digits upscaled (``sprites: auto``; or name one). Training clips use
the training split's sprites, test clips the test split's, so test clips show unseen digits.

Deviations:
    The paper's reference code clamps a sprite at the edge and reverses its velocity; here the overshoot
    is mirrored back (an exact reflection), so the speed is constant in every frame. Digits are resized to
    ``digit_size`` (28 at a 64x64 canvas, scaled with the canvas) so small canvases stay usable.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from ...config.schema import DataConfig
from ...errors import ConfigError, DataError
from .._core import DATASETS, DatasetSpec, load_dataset
from ..clips import clip_bundle

__all__ = ["DIRECTIONS", "MovingMNISTOptions", "bounce_trajectories", "make_moving_mnist"]

DIRECTIONS = ["up-right", "up-left", "down-left", "down-right"]
# What a left-right / up-down flip does to each direction class (a flip reverses that motion component).
_HFLIP = [1, 0, 3, 2]
_VFLIP = [3, 2, 1, 0]
_SPRITES = ("auto", "mnist", "fashion-mnist", "digits")


class MovingMNISTOptions(BaseModel):
    """``data: {name: moving-mnist, ...}`` options."""

    model_config = ConfigDict(extra="forbid")
    frames: int | None = Field(None, ge=2, le=256, description="frames per clip (default: the model's T)")
    canvas: int | None = Field(None, ge=8, le=512, description="canvas side (default: the model's H, W)")
    digit_size: int | None = Field(None, ge=3, description="sprite side (default: 28 * canvas / 64)")
    num_digits: int = Field(1, ge=1, le=8)
    speed: float | None = Field(None, gt=0, description="pixels per frame (default: 3 * canvas / 64)")
    margin: float = Field(15.0, ge=0, lt=45, description="degrees kept between a direction and the axes")
    label: Literal["direction", "digit"] = "direction"
    sprites: Literal["auto", "mnist", "fashion-mnist", "digits"] = "auto"
    n_train: int = Field(2000, ge=1, le=1_000_000)
    n_test: int = Field(500, ge=1, le=1_000_000)
    clip_seed: int = Field(0, description="the generator's seed (fixed: the same clips for every run seed)")


def bounce_trajectories(
    start: np.ndarray, velocity: np.ndarray, frames: int, limit: np.ndarray, *, velocities: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Positions ``(frames, *start.shape)`` of points moving at ``velocity`` inside ``[0, limit]`` per axis,
    reflecting off the bounds (the overshoot is mirrored back); with ``velocities``, also the velocity each
    frame leaves with (the step from frame t to t + 1), same shape.

    Args:
        start: ``(..., 2)`` initial positions (row, column), inside ``[0, limit]``.
        velocity: ``(..., 2)`` displacement per frame.
        limit: ``(2,)`` the largest position per axis (canvas minus sprite size).

    Example:
        >>> bounce_trajectories(np.array([[1.0, 0.0]]), np.array([[-2.0, 0.0]]), 3, np.array([4.0, 4.0]))[:, 0, 0]
        array([1., 1., 3.])
    """
    pos = np.asarray(start, dtype=np.float64).copy()
    vel = np.asarray(velocity, dtype=np.float64).copy()
    lim = np.broadcast_to(np.asarray(limit, dtype=np.float64), pos.shape)
    out = np.empty((frames, *pos.shape))
    vels = np.empty((frames, *pos.shape))
    for t in range(frames):
        out[t] = pos
        vels[t] = vel
        pos = pos + vel
        # A fixed speed below the canvas size bounces at most once per axis per frame.
        low, high = pos < 0, pos > lim
        pos = np.where(low, -pos, pos)
        pos = np.where(high, 2 * lim - pos, pos)
        vel = np.where(low | high, -vel, vel)
    return (out, vels) if velocities else out


def _sprites(name: str, split: str) -> tuple[np.ndarray, np.ndarray, str, list[str]]:
    """``(images uint8 (N, h, w), labels, source name, class names)`` for one split of the sprite source."""
    order = ("mnist", "fashion-mnist", "digits") if name == "auto" else (name,)
    for source in order:
        spec = DATASETS.get(source)
        if source != "digits" and spec.locate(None) is None:
            if name != "auto":
                raise DataError(f"moving-mnist: sprites {source!r} not found; `cnnkit datasets` says where it is looked for")
            continue
        ds = load_dataset(source, split=split, cfg=DataConfig(name=source))
        return ds.images[:, 0].numpy(), ds.labels.numpy(), source, list(ds.class_names)
    raise DataError("moving-mnist: no sprite source found")  # unreachable: digits ships with scikit-learn


def make_moving_mnist(
    sprites: np.ndarray,
    sprite_labels: np.ndarray,
    *,
    n: int,
    frames: int,
    canvas: tuple[int, int],
    digit_size: int,
    num_digits: int = 1,
    speed: float,
    margin: float = 15.0,
    label: str = "direction",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` clips ``(n, 1, frames, H, W)`` uint8 and their labels ``(n,)``; deterministic in ``seed``.

    Args:
        sprites: ``(M, h, w)`` uint8 source images, resized to ``digit_size``.
        sprite_labels: their classes (for ``label="digit"``).
    """
    h, w = canvas
    if digit_size > min(h, w):
        raise ConfigError(f"Expected digit_size <= canvas. Received: digit_size={digit_size}, canvas={h}x{w}")
    if speed >= min(h, w) - digit_size + 1:
        raise ConfigError(f"Expected speed smaller than the free space {min(h, w) - digit_size}. Received: speed={speed}")
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(sprites), size=(n, num_digits))
    # Resize only the sprites used, once each.
    used, inverse = np.unique(pick, return_inverse=True)
    small = torch.from_numpy(sprites[used]).float()[:, None]
    small = F.interpolate(small, size=(digit_size, digit_size), mode="bilinear", align_corners=False, antialias=True)
    small_np = small[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()
    chosen = small_np[inverse.reshape(n, num_digits)]  # (n, K, s, s)
    quadrant = rng.integers(0, 4, size=n)
    angle = quadrant[:, None] * 90.0 + rng.uniform(margin, 90.0 - margin, size=(n, num_digits))
    theta = np.deg2rad(angle)
    # Image rows grow downwards: "up" is a negative row velocity.
    velocity = np.stack([-np.sin(theta), np.cos(theta)], axis=-1) * speed  # (n, K, 2)
    limit = np.array([h - digit_size, w - digit_size], dtype=np.float64)
    # Uniform starts: what makes the middle frame's position independent of the label (module docstring).
    start = rng.uniform(0, 1, size=(n, num_digits, 2)) * limit
    positions, vels = bounce_trajectories(start, velocity, frames, limit, velocities=True)
    traj = np.rint(positions).astype(np.int64)  # (T, n, K, 2)
    clips = np.zeros((n, frames, h, w), dtype=np.uint8)
    ar = np.arange(digit_size)
    idx = np.arange(n)[:, None, None]
    for t in range(frames):
        for k in range(num_digits):
            rows = (traj[t, :, k, 0][:, None] + ar)[:, :, None]
            cols = (traj[t, :, k, 1][:, None] + ar)[:, None, :]
            clips[idx, t, rows, cols] = np.maximum(clips[idx, t, rows, cols], chosen[:, k])
    if label == "direction":
        v = vels[frames // 2, :, 0]  # (n, 2): the first sprite leaving the middle frame
        up, right = v[:, 0] < 0, v[:, 1] > 0
        labels = np.select([up & right, up & ~right, ~up & ~right], [0, 1, 2], default=3)
    else:
        labels = sprite_labels[pick[:, 0]]
    return clips[:, None], labels.astype(np.int64)


def _build(cfg: DataConfig, *, spec: DatasetSpec, input_shape: tuple[int, ...], device: torch.device, seed: int,
           rank: int = 0, world_size: int = 1) -> object:
    opts = MovingMNISTOptions.model_validate(cfg.options())
    model_t, model_hw = (input_shape[1], tuple(input_shape[2:])) if len(input_shape) == 4 else (None, None)
    frames = opts.frames or model_t
    canvas = (opts.canvas, opts.canvas) if opts.canvas else model_hw
    if frames is None or canvas is None:
        raise ConfigError(
            f"moving-mnist: the model's input {tuple(input_shape)} is not a clip (C, T, H, W); "
            "use a video model (c3d, two_stream, cnn_lstm, single_frame)"
        )
    h, w = (int(v) for v in canvas)
    digit_size = opts.digit_size or max(4, round(28 * min(h, w) / 64))
    speed = opts.speed if opts.speed is not None else 3.0 * min(h, w) / 64
    parts = {}
    source, sprite_names = "", list[str]()
    for split, n, offset in (("train", opts.n_train, 0), ("test", opts.n_test, 1)):
        images, labels, source, sprite_names = _sprites(opts.sprites, split)
        clips, y = make_moving_mnist(
            images, labels, n=n, frames=int(frames), canvas=(h, w), digit_size=digit_size,
            num_digits=opts.num_digits, speed=speed, margin=opts.margin, label=opts.label,
            seed=int(np.random.SeedSequence([opts.clip_seed, offset]).generate_state(1)[0]),
        )
        parts[split] = (torch.from_numpy(clips), torch.from_numpy(y))
    if opts.label == "direction":
        names, flips = list(DIRECTIONS), {"hflip_labels": _HFLIP, "vflip_labels": _VFLIP}
    else:
        names, flips = sprite_names, None
    meta = {"generator": "moving-mnist", "label": opts.label, "sprites": source, "digit_size": digit_size,
            "speed": speed, "num_digits": opts.num_digits}
    return clip_bundle(cfg, train=parts["train"], test=parts["test"], class_names=names, dataset=spec.name,
                         device=device, seed=seed, rank=rank, world_size=world_size, flip_labels=flips, meta=meta)


DATASETS.add(
    "moving-mnist",
    DatasetSpec(
        "moving-mnist",
        "Moving MNIST clips (Srivastava et al. 2015), generated: bouncing digits, motion-direction labels",
        bundled="cnnkit (generated)",
        kind="clip",
        build=_build,
        options=MovingMNISTOptions,
        num_classes=4,
    ),
)
