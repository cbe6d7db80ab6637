"""``cnnkit play RUN``: a trained agent plays. DQN runs play their environment greedily (optionally writing a
GIF of the first episode); game runs play against a random player, OpenSpiel's MCTS bot or a human."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CnnkitError
from ..runs import load_model
from .evaluate import evaluate_policy, summarize_returns

__all__ = ["play_run", "write_gif"]


def write_gif(frames: list[np.ndarray], path: str | Path, *, fps: int = 15) -> Path:
    """Frames ``(H, W, 3)`` uint8 -> an animated GIF (Pillow), written atomically."""
    from PIL import Image

    from ..runs import atomic_write_bytes

    if not frames:
        raise CnnkitError(f"no frames to write to {path}")
    import io

    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=max(1, 1000 // fps), loop=0)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _play_dqn(loaded: Any, *, episodes: int, gif: Path | None, epsilon: float | None, seed: int) -> dict[str, Any]:
    meta = loaded.info.get("data_meta") or {}
    env_name = meta.get("env")
    if not isinstance(env_name, str):
        raise CnnkitError(f"{loaded.path}/model.json does not name its environment (data_meta.env)")
    frames: list[np.ndarray] = []

    def grab(env: Any) -> None:
        frames.append(env.rgb())

    eps = float(meta.get("eval_epsilon", 0.0)) if epsilon is None else float(epsilon)
    returns: list[float] = []
    for i in range(episodes):
        want = gif is not None and i == 0  # only the first episode goes into the GIF
        returns += evaluate_policy(
            loaded.model, env_name, episodes=1, epsilon=eps, seed=seed + i,
            scale=float(loaded.preprocessing.get("scale", 1.0)), sticky_actions=float(meta.get("sticky_actions", 0.0)),
            max_frames=int(meta.get("max_episode_frames", 18_000)), on_frame=grab if want else None,
        )
    out: dict[str, Any] = {"env": env_name, "episodes": episodes, "epsilon": eps, "returns": returns, **summarize_returns(returns)}
    if gif is not None:
        out["gif"] = str(write_gif(frames, gif))
    return out


def play_run(
    run_dir: str | Path, *, episodes: int = 1, gif: str | Path | None = None, epsilon: float | None = None,
    against: str = "random", seed: int = 0, input_fn: Any = input, output_fn: Any = print,
) -> dict[str, Any]:
    """Play a trained run: a DQN agent in its environment, or a game agent against ``against``.

    Args:
        episodes: episodes (DQN) or games (board games) to play.
        gif: DQN only: write the first episode as an animated GIF here.
        epsilon: DQN only: exploration while playing (default: the run's evaluation epsilon; 0 is greedy).
        against: games only: ``random``, ``mcts:N`` (OpenSpiel's MCTS bot with N simulations) or ``human``.
        input_fn, output_fn: where a human's moves come from and the board goes (the terminal by default).
    """
    loaded = load_model(run_dir)
    task = (loaded.info.get("task") or {}).get("name")
    if task == "dqn":
        if episodes < 1:
            raise CnnkitError(f"Expected --episodes >= 1. Received: {episodes}")
        return _play_dqn(loaded, episodes=episodes, gif=Path(gif) if gif else None, epsilon=epsilon, seed=seed)
    if task in ("alphazero", "blondie24", "move-prediction"):
        from ..games.play import play_games

        return play_games(loaded, games=episodes, against=against, seed=seed, input_fn=input_fn, output_fn=output_fn)
    raise CnnkitError(f"{run_dir} is not a run of a task that plays (dqn, alphazero, blondie24); its task is {task or 'classification'!r}")
