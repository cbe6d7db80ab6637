"""``task: blondie24``: co-evolution of checkers evaluators (Chellapilla & Fogel 1999, 2001; Fogel 2002).

A population of ``population`` networks (:func:`cnnkit.models.blondie24`), each with its weights ``w`` and
self-adaptive step sizes ``sigma`` (one per weight, 0.05 at the start). Each generation every parent makes
one offspring (Chellapilla & Fogel 2001, Sec. III, Eqs. 1-2):

    sigma'_j = sigma_j * exp(tau * N_j(0, 1)),  tau = 1 / sqrt(2 sqrt(N_w));  w'_j = w_j + sigma'_j * N_j(0, 1)

then each of the 2 * population plays ``games_per_individual`` games as the first player against opponents
drawn at random from the others, choosing moves by alpha-beta minimax to ``depth`` ply with its network
at the leaves; a win earns ``win`` points, a loss ``loss``, a draw ``draw`` (+1 / -2 / 0 in the paper), a
game over ``max_moves`` moves is a draw. The ``population`` with the most points become the next parents.
No human games, no hand-made features beyond the piece differential.

Deviations:
    The king value K is a weight like the others (Gaussian steps, kept in [1, 3]) where the paper moved it
    by -0.1, 0 or +0.1; default depth 2 (the paper: 4, later 6-8) and a few generations, for a CPU; the
    network's subsquares are convolutional (see :class:`~cnnkit.models.blondie24.Blondie24Net`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config.schema import Config
from ..plots import plot_series
from ..runs import save_model
from ..runtime import setup_runtime
from ..tasks import create_task
from ..tasks.interactive import Blondie24Task
from ..train import checkpoint as ckpt
from ..train.signals import handle_stop_signals
from ..train.trainer import TrainingInterrupted
from .agents import minimax_agent, play_game, random_agent
from .alphazero import build_game_network
from .openspiel import game_facts, load_game
from .session_tools import rng_from_meta, rng_to_meta, win_rate

__all__ = ["load_vector", "mutate", "player0_values", "run_blondie24"]

SIGMA0 = 0.05  # initial step size of every weight (Chellapilla & Fogel 2001, Sec. III)


def mutate(w: torch.Tensor, sigma: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One offspring: log-normal self-adaptation of ``sigma``, then a Gaussian step of ``w`` with it."""
    tau = 1.0 / math.sqrt(2.0 * math.sqrt(w.numel()))
    new_sigma = sigma * torch.exp(tau * torch.randn(sigma.shape, generator=gen))
    return w + new_sigma * torch.randn(w.shape, generator=gen), new_sigma


def player0_values(model: nn.Module, facts: dict[str, Any]) -> Any:
    """``values(states)``: the network's evaluation of each state for player 0 (from player 0's observation)."""
    rows, cols = facts["board"]

    @torch.no_grad()
    def values(states: list[Any]) -> list[float]:
        x = np.stack([np.asarray(s.observation_tensor(0), dtype=np.float32).reshape(-1, rows, cols) for s in states])
        turn = np.stack([np.full((1, rows, cols), float(s.current_player()), dtype=np.float32) for s in states])
        return model(torch.from_numpy(np.concatenate([x, turn], axis=1)))[:, 0].tolist()

    return values


def load_vector(model: nn.Module, w: torch.Tensor) -> None:
    """Copy a flat weight vector into ``model``'s parameters (copies: torch's ``vector_to_parameters`` makes
    them views of ``w``, which safetensors then refuses to save)."""
    start = 0
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(w[start : start + p.numel()].view_as(p))
            start += p.numel()


def _agent(model: nn.Module, w: torch.Tensor, facts: dict[str, Any], depth: int) -> Any:
    load_vector(model, w)
    return minimax_agent(player0_values(model, facts), depth=depth)


def _play(game: Any, models: tuple[nn.Module, nn.Module], ws: tuple[torch.Tensor, torch.Tensor], facts: dict[str, Any],
          task: Blondie24Task) -> float:
    agents = (_agent(models[0], ws[0], facts, task.depth), _agent(models[1], ws[1], facts, task.depth))
    return play_game(game, agents, max_moves=task.max_moves)


def run_blondie24(cfg: Config | None, *, out: str | Path | None = None, overwrite: bool = False,
                  resume: str | Path | None = None, quiet: bool = False) -> dict[str, Any]:
    """Co-evolve evaluators as configured (``task: {name: blondie24, game: checkers}``)."""
    from ..rl.session import open_session

    session = open_session(cfg, out=out, overwrite=overwrite, resume=resume, quiet=quiet)
    cfg = session.cfg
    task = create_task(cfg.task.name, **cfg.task.kwargs())
    assert isinstance(task, Blondie24Task)
    setup_runtime(threads=cfg.train.threads, deterministic=cfg.train.deterministic, device=torch.device("cpu"))
    game = load_game(task.game)
    facts = game_facts(game)
    model, build = build_game_network(cfg, facts, kind="blondie24")
    model.eval().requires_grad_(False)
    opponent, _ = build_game_network(cfg, facts, kind="blondie24")
    opponent.eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.RandomState(cfg.seed)
    n_w = sum(p.numel() for p in model.parameters())
    # Initial weights uniform in [-0.2, 0.2] (Chellapilla & Fogel 2001, Sec. III), K = 2.
    weights = torch.rand((task.population, n_w), generator=gen) * 0.4 - 0.2
    k_index = 0  # the king value is the first parameter (see Blondie24Net)
    weights[:, k_index] = 2.0
    sigmas = torch.full((task.population, n_w), SIGMA0)
    rows: list[dict[str, Any]] = []
    generation = 0
    if session.resumed is not None:
        t, m = session.resumed.tensors, session.resumed.meta
        weights, sigmas = t["population/w"], t["population/sigma"]
        gen.set_state(t["gen/mutation"])
        rng = rng_from_meta(m["games_rng"], t["rng/games"])
        ckpt.set_rng_state(t, m["rng"])
        rows, generation = list(m["rows"]), int(m["generation"])
        session.metrics.rewrite(rows)
    with handle_stop_signals(session.stop) as stop:
        while generation < task.generations:
            start = time.perf_counter()
            kids = [mutate(weights[i], sigmas[i], gen) for i in range(task.population)]
            all_w = torch.cat([weights, torch.stack([k[0] for k in kids])])
            all_w[:, k_index].clamp_(1.0, 3.0)
            all_s = torch.cat([sigmas, torch.stack([k[1] for k in kids])])
            points = np.zeros(len(all_w))
            for i in range(len(all_w)):
                for _ in range(task.games_per_individual):
                    j = int(rng.choice([k for k in range(len(all_w)) if k != i]))
                    r = _play(game, (model, opponent), (all_w[i], all_w[j]), facts, task)
                    for who, res in ((i, r), (j, -r)):
                        points[who] += task.win if res > 0 else task.loss if res < 0 else task.draw
                if stop.requested:
                    raise TrainingInterrupted(
                        f"interrupted ({stop.signal_name}) in generation {generation + 1}; resume with cnnkit train "
                        f"--resume {session.run_dir} (the generation is redone from its start)", run_dir=session.run_dir)
            order = sorted(range(len(all_w)), key=lambda k: (-points[k], k))[: task.population]
            weights, sigmas = all_w[order].clone(), all_s[order].clone()
            generation += 1
            seconds = time.perf_counter() - start
            rate = _eval_vs_random(game, model, weights[0], facts, task, seed=cfg.seed + 1000 + generation)
            row = {"generation": generation, "best_points": float(points[order[0]]), "mean_points": float(points.mean()),
                   "king_value": float(weights[0, k_index]), "mean_sigma": float(sigmas.mean()), **rate, "seconds": seconds}
            rows.append(row)
            session.metrics.append(row)
            session.progress.message(
                f"generation {generation}/{task.generations}  best {row['best_points']:+.0f} points  K {row['king_value']:.2f}"
                f"  vs random: won {row['win_rate_vs_random']:.0%}, drawn {row['draw_rate_vs_random']:.0%}  {seconds:.1f}s")
            if generation % task.checkpoint_every == 0 or generation == task.generations:
                rng_t, rng_m = ckpt.rng_state()
                g_meta, g_keys = rng_to_meta(rng)
                session.checkpoint(generation, {"population/w": weights, "population/sigma": sigmas, "gen/mutation": gen.get_state(),
                                                "rng/games": g_keys, **rng_t},
                                   {"generation": generation, "rows": rows, "rng": rng_m, "games_rng": g_meta})
    load_vector(model, weights[0])
    extra = {"task": {"name": "blondie24", **cfg.task.kwargs()}, "kind": "game",
             "data_meta": {"game": task.game, **facts, "depth": task.depth, "max_moves": task.max_moves}}
    save_model(session.run_dir, model, build=build, preprocessing={"input_shape": [facts["in_channels"], *facts["board"]]}, extra=extra)
    plot_series(rows, session.run_dir / "plots" / "evolution.png", x="generation", title=task.game,
                panels={"rate vs random": ["win_rate_vs_random", "draw_rate_vs_random"], "points": ["best_points", "mean_points"]})
    last = rows[-1] if rows else {}
    summary = {"task": "blondie24", "game": task.game, "run_dir": str(session.run_dir), "seed": cfg.seed,
               "generations": generation, **{f"test_{k}": v for k, v in last.items() if "rate" in k},
               "wall_seconds": time.perf_counter() - session.started}
    session.write_summary(summary)
    if last:
        print(f"best evaluator vs random: won {last['win_rate_vs_random']:.0%}, drawn {last['draw_rate_vs_random']:.0%} "
              f"of {task.eval_games} games", flush=True)
    print(f"run folder: {session.run_dir}", flush=True)
    return summary


def _eval_vs_random(game: Any, model: nn.Module, w: torch.Tensor, facts: dict[str, Any], task: Blondie24Task, *, seed: int) -> dict[str, Any]:
    if task.eval_games == 0:
        return {"win_rate_vs_random": None, "draw_rate_vs_random": None}
    me = _agent(model, w, facts, task.depth)
    rnd = random_agent(np.random.RandomState(seed))
    results = [play_game(game, (me, rnd), max_moves=task.max_moves) if g % 2 == 0 else
               -play_game(game, (rnd, me), max_moves=task.max_moves) for g in range(task.eval_games)]
    return win_rate(results, "random")
