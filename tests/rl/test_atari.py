"""Atari with the Nature preprocessing (Mnih et al. 2015, Methods), checked against frames stepped by hand
on the emulator itself; and a short ``cnnkit train configs/dqn-atari.yaml`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("ale_py")
pytest.importorskip("gymnasium")

from cnnkit.rl.atari import FRAME_SKIP, preprocess_frame  # noqa: E402
from cnnkit.rl.envs import make_env  # noqa: E402

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "dqn-atari.yaml"


def test_preprocess_is_the_max_of_two_frames_resized_to_84():
    a = np.zeros((210, 160), dtype=np.uint8)
    b = np.zeros((210, 160), dtype=np.uint8)
    a[:, :80] = 200  # a sprite drawn in one frame only (flicker) ...
    b[:, 80:] = 100  # ... and another in the other
    out = preprocess_frame(a, b)
    assert out.shape == (84, 84) and out.dtype == np.uint8
    # max(a, b) is 200 on the left half and 100 on the right: far from the seam, the resize keeps them
    assert (out[:, :40] == 200).all() and (out[:, 44:] == 100).all()
    # an independent resize (torch's antialiased bilinear, which follows PIL's) agrees to within 1 grey level
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (2, 210, 160), dtype=np.uint8)
    ours = preprocess_frame(x, y).astype(np.int16)
    ref = F.interpolate(torch.from_numpy(np.maximum(x, y)).float()[None, None], size=(84, 84), mode="bilinear",
                        antialias=True, align_corners=False)[0, 0].round().clamp(0, 255).numpy().astype(np.int16)
    assert np.abs(ours - ref).max() <= 1


def test_one_step_is_four_frames_summed_and_max_pooled_by_hand():
    env = make_env("atari:Breakout")
    env.seed(0)
    first = env.reset()
    meta, arrays = env.get_state()
    obs, reward, terminal, _ = env.step(1)  # FIRE
    env.set_state(meta, arrays)
    ale, fire = env._ale, env._actions[1]
    total, screens = 0.0, []
    for _ in range(FRAME_SKIP):
        total += ale.act(fire)
        screens.append(ale.getScreenGrayscale())
    assert reward == total and not terminal
    assert np.array_equal(obs[-1], preprocess_frame(screens[-2], screens[-1]))
    assert np.array_equal(obs[:3], first[1:])  # the stack of 4 slides by one


def test_noop_starts_differ_and_a_lost_life_is_flagged_for_training_only():
    env = make_env("atari:Breakout")
    starts = set()
    for seed in range(4):
        env.seed(seed)
        env.reset()
        starts.add(env._ale.getEpisodeFrameNumber())
    # 1-30 random no-ops (Breakout's screen does not move before FIRE, so count the emulator's frames)
    assert len(starts) > 1 and all(1 <= n <= 30 for n in starts)
    flags = {}
    for training in (True, False):
        env = make_env("atari:Breakout", training=training)
        env.seed(0)
        env.reset()
        lost = False
        for t in range(2000):
            _, _, terminal, life_lost = env.step(t % env.num_actions)
            lost = lost or life_lost
            if lost or terminal:
                break
        flags[training] = lost
    assert flags == {True: True, False: False}


@pytest.mark.slow  # the Nature network on 84x84x4 frames: ~15 s on 2 cores
def test_atari_recipe_trains_end_to_end(tmp_path: Path):
    from cnnkit.cli import main

    out = tmp_path / "atari"
    sets = ["task.frames=400", "task.replay_size=1000", "task.replay_start=200", "task.eval_every=400",
            "task.checkpoint_every=400", "task.eval_episodes=1", "env.max_episode_frames=200", "train.device=cpu",
            "train.threads=1"]
    assert main(["train", str(RECIPE), "--out", str(out), "--quiet", *sum((["--set", s] for s in sets), [])]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env"] == "atari:Breakout" and summary["frames"] == 400 and summary["updates"] == (400 - 200) // 4 + 1
    info = json.loads((out / "model.json").read_text())
    assert info["preprocessing"]["input_shape"] == [4, 84, 84]
