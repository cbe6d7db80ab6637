"""``task: alphazero``: self-play with PUCT search, then SGD on the search's targets (Silver et al. 2017).

One iteration: ``games_per_iteration`` self-play games, each move chosen from the visit counts of
``simulations`` PUCT simulations (with Dirichlet noise at the root; in proportion to the counts for the
first ``temperature_moves`` moves, the most visited afterwards); each position is stored with its target
``pi`` (the visit distribution) and ``z`` (the final result for the player to move). Then
``steps_per_iteration`` minibatches of ``l = (z - v)^2 - pi^T log p`` (+ the optimizer's weight decay,
the paper's ``c ||theta||^2``), each position under a random board symmetry of the game when it has them
(``task.symmetries``, AlphaGo Zero's augmentation: :mod:`cnnkit.games.symmetry`), and ``eval_games`` games
of the network's search against a random player.

Checkpoints are taken between iterations and hold the network, the optimizer, the position buffer, the
random generators and the rows, so a resumed run repeats exactly; SIGTERM stops after the current game,
and the resumed run redoes the interrupted iteration from its start.

Deviations:
    Sequential (self-play, then training) rather than the paper's asynchronous pipeline; no evaluator
    gating (AlphaZero, 2018, dropped it too); network and search sizes for a CPU.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config.schema import Config
from ..errors import ConfigError
from ..models import build_model, model_info
from ..plots import plot_series
from ..runs import save_model
from ..runtime import setup_runtime
from ..tasks import create_task
from ..tasks.interactive import AlphaZeroTask
from ..train import build_optimizer
from ..train import checkpoint as ckpt
from ..train.signals import handle_stop_signals
from ..train.trainer import TrainingInterrupted
from .agents import mcts_agent, play_game, random_agent
from .mcts import run_mcts, visit_policy
from .openspiel import board_tensor, game_facts, load_game
from .session_tools import rng_from_meta, rng_to_meta, win_rate
from .symmetry import augment, game_symmetries

__all__ = ["run_alphazero", "build_game_network", "self_play_game"]


def build_game_network(cfg: Config, facts: dict[str, Any], *, kind: str = "alphazero_resnet") -> tuple[nn.Module, dict[str, Any]]:
    """The configured policy/value network sized to the game, and its ``model.json`` build record."""
    spec = cfg.model.as_dict()
    name = spec.get("name")
    if name is None or model_info(name).get("task") != "games" or (kind == "alphazero_resnet") != (name != "blondie24"):
        want = "alphazero_resnet" if kind == "alphazero_resnet" else "blondie24"
        raise ConfigError(f"model {name or 'spec'!r} is not a network for this task; use model.name={want}")
    torch.manual_seed(cfg.seed)
    data = {"board": tuple(facts["board"]), "num_actions": facts["num_actions"], "side": facts["board"][0]}
    model = build_model(dict(spec), in_channels=facts["in_channels"], data_kwargs=data)
    build = {**spec, "in_channels": facts["in_channels"]}
    build.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in data.items() if k in _accepted(model)})
    return model, build


def _accepted(model: nn.Module) -> set[str]:
    return {"board", "num_actions"} if hasattr(model, "num_actions") else {"side"}


def self_play_game(game: Any, evaluate: Any, task: AlphaZeroTask, facts: dict[str, Any], rng: np.random.RandomState) -> list[tuple[torch.Tensor, np.ndarray, float]]:
    """One self-play game: ``(input, pi, z)`` per position."""
    state = game.new_initial_state()
    history: list[tuple[torch.Tensor, np.ndarray, int]] = []
    move = 0
    while not state.is_terminal():
        root = run_mcts(state, evaluate, simulations=task.simulations, c_puct=task.c_puct, rng=rng,
                        dirichlet_alpha=task.dirichlet_alpha, dirichlet_fraction=task.dirichlet_fraction)
        pi = visit_policy(root, facts["num_actions"], temperature=1.0)
        if move < task.temperature_moves:
            action = int(rng.choice(len(pi), p=pi))
        else:
            action = int(np.argmax(pi))
        history.append((board_tensor(state, facts), pi, state.current_player()))
        state.apply_action(action)
        move += 1
    returns = state.returns()
    return [(x, pi, float(returns[player])) for x, pi, player in history]


def _loss(model: nn.Module, x: torch.Tensor, pi: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, float, float]:
    out = model(x)
    logp = F.log_softmax(out[:, :-1], dim=1)
    policy = -(pi * logp).sum(dim=1).mean()
    value = F.mse_loss(out[:, -1], z)
    return policy + value, float(policy.detach()), float(value.detach())


class _Buffer:
    """The newest ``size`` positions as tensors (inputs, pi, z)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.x: torch.Tensor | None = None
        self.pi: torch.Tensor | None = None
        self.z: torch.Tensor | None = None

    def extend(self, items: list[tuple[torch.Tensor, np.ndarray, float]]) -> None:
        x = torch.stack([i[0] for i in items])
        pi = torch.from_numpy(np.stack([i[1] for i in items])).float()
        z = torch.tensor([i[2] for i in items], dtype=torch.float32)
        if self.x is not None:
            x, pi, z = torch.cat([self.x, x]), torch.cat([self.pi, pi]), torch.cat([self.z, z])  # type: ignore[list-item]
        self.x, self.pi, self.z = x[-self.size:], pi[-self.size:], z[-self.size:]

    def __len__(self) -> int:
        return 0 if self.x is None else len(self.x)


def run_alphazero(cfg: Config | None, *, out: str | Path | None = None, overwrite: bool = False,
                  resume: str | Path | None = None, quiet: bool = False) -> dict[str, Any]:
    """Train a policy/value network by self-play as configured (``task: {name: alphazero, game: ...}``)."""
    from ..rl.session import open_session

    session = open_session(cfg, out=out, overwrite=overwrite, resume=resume, quiet=quiet)
    cfg = session.cfg
    task = create_task(cfg.task.name, **cfg.task.kwargs())
    assert isinstance(task, AlphaZeroTask)
    setup_runtime(threads=cfg.train.threads, deterministic=cfg.train.deterministic, device=torch.device("cpu"))
    game = load_game(task.game)
    facts = game_facts(game)
    model, build = build_game_network(cfg, facts)
    symmetries = game_symmetries(game, facts) if task.symmetries else game_symmetries(game, facts)[:1]
    optimizer = build_optimizer(model, cfg.optim)
    rng = np.random.RandomState(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    buffer = _Buffer(task.buffer_size)
    rows: list[dict[str, Any]] = []
    iteration = 0
    if session.resumed is not None:
        t, m = session.resumed.tensors, session.resumed.meta
        model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model/")})
        ckpt.optimizer_state_from_flat(optimizer, t, m["optimizer"])
        ckpt.set_rng_state(t, m["rng"])
        gen.set_state(t["gen/batches"])
        rng = rng_from_meta(m["selfplay_rng"], t["rng/selfplay"])
        if "buffer/x" in t:
            buffer.x, buffer.pi, buffer.z = t["buffer/x"], t["buffer/pi"], t["buffer/z"]
        rows, iteration = list(m["rows"]), int(m["iteration"])
        session.metrics.rewrite(rows)
        session.progress.message(f"resumed after iteration {iteration}")
    from .agents import net_evaluator

    with handle_stop_signals(session.stop) as stop:
        while iteration < task.iterations:
            start = time.perf_counter()
            evaluate = net_evaluator(model, facts)
            positions = 0
            for _ in range(task.games_per_iteration):
                items = self_play_game(game, evaluate, task, facts, rng)
                buffer.extend(items)
                positions += len(items)
                if stop.requested:
                    raise TrainingInterrupted(
                        f"interrupted ({stop.signal_name}) in iteration {iteration + 1}; resume with cnnkit train "
                        f"--resume {session.run_dir} (the iteration is redone from its start)", run_dir=session.run_dir)
            model.train()
            totals = np.zeros(3)
            for _ in range(task.steps_per_iteration):
                idx = torch.randint(0, len(buffer), (min(task.batch_size, len(buffer)),), generator=gen)
                x, pi = augment(buffer.x[idx], buffer.pi[idx], symmetries, gen)  # type: ignore[index]
                loss, pl, vl = _loss(model, x, pi, buffer.z[idx])  # type: ignore[index]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                totals += (float(loss.detach()), pl, vl)
            model.eval()
            iteration += 1
            train_seconds = time.perf_counter() - start
            due = iteration % task.eval_every == 0 or iteration == task.iterations
            rate = _eval_vs_random(game, model, facts, task, seed=cfg.seed + 1000 + iteration, games=task.eval_games if due else 0)
            row = {"iteration": iteration, "games": iteration * task.games_per_iteration, "positions": positions,
                   "loss": totals[0] / task.steps_per_iteration, "policy_loss": totals[1] / task.steps_per_iteration,
                   "value_loss": totals[2] / task.steps_per_iteration, **rate, "seconds": train_seconds}
            rows.append(row)
            session.metrics.append(row)
            versus = "" if row["win_rate_vs_random"] is None else \
                f"  vs random: won {row['win_rate_vs_random']:.0%}, drawn {row['draw_rate_vs_random']:.0%}"
            session.progress.message(
                f"iteration {iteration}/{task.iterations}  loss {row['loss']:.4f} (policy {row['policy_loss']:.4f}, value "
                f"{row['value_loss']:.4f}){versus}  {train_seconds:.1f}s")
            if iteration % task.checkpoint_every == 0 or iteration == task.iterations:
                tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
                opt_t, opt_m = ckpt.optimizer_state_to_flat(optimizer)
                rng_t, rng_m = ckpt.rng_state()
                sp_meta, sp_keys = rng_to_meta(rng)
                tensors.update({**opt_t, **rng_t, "gen/batches": gen.get_state(), "rng/selfplay": sp_keys})
                if buffer.x is not None:
                    tensors.update({"buffer/x": buffer.x, "buffer/pi": buffer.pi, "buffer/z": buffer.z})
                session.checkpoint(iteration, tensors, {"iteration": iteration, "rows": rows, "optimizer": opt_m,
                                                        "rng": rng_m, "selfplay_rng": sp_meta})
    extra = {"task": {"name": "alphazero", **cfg.task.kwargs()}, "kind": "game",
             "data_meta": {"game": task.game, **facts, "simulations": task.simulations, "c_puct": task.c_puct}}
    save_model(session.run_dir, model, build=build, preprocessing={"input_shape": [facts["in_channels"], *facts["board"]]}, extra=extra)
    plot_series(rows, session.run_dir / "plots" / "self_play.png", x="iteration", title=task.game,
                panels={"rate vs random": ["win_rate_vs_random", "draw_rate_vs_random"], "loss": ["policy_loss", "value_loss"]})
    last = rows[-1] if rows else {}
    summary = {"task": "alphazero", "game": task.game, "run_dir": str(session.run_dir), "seed": cfg.seed,
               "iterations": iteration, **{f"test_{k}": v for k, v in last.items() if "rate" in k},
               "wall_seconds": time.perf_counter() - session.started}
    session.write_summary(summary)
    if last and task.eval_games:
        print(f"vs random: won {last['win_rate_vs_random']:.0%}, drawn {last['draw_rate_vs_random']:.0%} of "
              f"{task.eval_games} games", flush=True)
    print(f"run folder: {session.run_dir}", flush=True)
    return summary


def _eval_vs_random(game: Any, model: nn.Module, facts: dict[str, Any], task: AlphaZeroTask, *, seed: int,
                    games: int) -> dict[str, float]:
    if games == 0:
        return {"win_rate_vs_random": None, "draw_rate_vs_random": None}  # type: ignore[dict-item]
    me = mcts_agent(model, facts, simulations=task.simulations, c_puct=task.c_puct)
    rnd = random_agent(np.random.RandomState(seed))
    results = []
    for g in range(games):
        if g % 2 == 0:
            results.append(play_game(game, (me, rnd)))
        else:
            results.append(-play_game(game, (rnd, me)))
    return win_rate(results, "random")
