"""Board games: win rates of a trained agent against a random player and OpenSpiel's MCTS bot.

Trains ``--config`` (default ``configs/alphazero-tictactoe.yaml``; also ``alphazero-connect-four.yaml``,
``blondie24-checkers.yaml``), or takes ``--run RUN`` (any alphazero/blondie24 run folder), and plays
``--games`` games against each opponent, alternating who moves first; reports wins / draws / losses and
95% Wilson intervals. OpenSpiel's ``MCTSBot`` is plain UCT (c = 2) with one random rollout per leaf and N
simulations per move (``--mcts 25,100``). The same-run baseline is the *untrained* network of the same
architecture and seed, searching the same way (PUCT with the same simulations, or minimax to the same
depth): what the training added is the difference between the two rows of an opponent. Perfect play
draws tic-tac-toe, so against a strong opponent "not losing" is the measure; the table shows both.

``--raw`` adds the raw policy of an AlphaZero network against random: one simulation, so its favourite move.

``--perfect N`` (games small enough to solve, e.g. tic-tac-toe): N distinct positions reached by random play
are solved exactly with OpenSpiel's alpha-beta search, and each agent is scored against perfect play: how
often the raw policy's favourite move and the search's chosen move keep the position's game-theoretic value
(an optimal move), and how often the value head's sign matches the solved value (win / draw / loss for the
player to move, a draw counting as right when ``|v| < 1/3``). Unlike win rates against a weak opponent, this
separates what the network learnt from what the look-ahead finds.

    python benchmarks/games.py [--run RUN] [--games 40] [--mcts 25,100] [--config configs/alphazero-tictactoe.yaml]
                               [--perfect 500]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from cnnkit.config import load_config
from cnnkit.games.alphazero import build_game_network
from cnnkit.games.perfect import perfect_play, random_positions, solve
from cnnkit.games.play import agent_from_run, play_games
from cnnkit.games.session_tools import wilson_interval
from cnnkit.runs import load_model
from cnnkit.train import fit

ROOT = Path(__file__).resolve().parents[1]


def _untrained(loaded: Any, run: Path) -> Any:
    """The run's agent with the network it started from: same architecture, initialised from the same seed."""
    cfg = load_config(run / "config.yaml")
    meta = loaded.info["data_meta"]
    facts = {"in_channels": int(meta["in_channels"]), "board": list(meta["board"]), "num_actions": int(meta["num_actions"])}
    kind = "blondie24" if loaded.info["task"]["name"] == "blondie24" else "alphazero_resnet"
    model, _ = build_game_network(cfg, facts, kind=kind)
    return dataclasses.replace(loaded, model=model.eval())


def _row(name: str, opponent: str, r: dict[str, Any]) -> str:
    w_lo, w_hi = wilson_interval(r["wins"], r["games"])
    n_lo, n_hi = wilson_interval(r["wins"] + r["draws"], r["games"])
    return (f"| {name} | {opponent} | {r['wins']} | {r['draws']} | {r['losses']} | {r['wins'] / r['games']:.0%} "
            f"({w_lo:.0%}-{w_hi:.0%}) | {(r['wins'] + r['draws']) / r['games']:.0%} ({n_lo:.0%}-{n_hi:.0%}) |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=None)
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "alphazero-tictactoe.yaml")
    ap.add_argument("--out", type=Path, default=None, help="keep the run trained from --config here (default: a temporary folder)")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--games", type=int, default=40)
    ap.add_argument("--mcts", default="25,100")
    ap.add_argument("--no-baseline", action="store_true", help="skip the untrained network's rows")
    ap.add_argument("--raw", action="store_true", help="also the raw policy (1 simulation: its favourite move) against random")
    ap.add_argument("--perfect", type=int, default=0, help="positions to score against perfect play (small games only)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run
        if run is None:
            run = args.out or Path(tmp) / "run"
            summary = fit(load_config(args.config, args.overrides), out=run, quiet=True)
            print(f"trained {args.config.name}: {summary.get('iterations', summary.get('generations'))} rounds, "
                  f"{summary['wall_seconds'] / 60:.1f} min (load average {os.getloadavg()[0]:.1f} on this machine)\n")
        loaded = load_model(run)
        agents = [("trained", loaded)] + ([] if args.no_baseline else [("untrained", _untrained(loaded, run))])
        print(f"## {loaded.info['data_meta']['game']}: {loaded.info['task']['name']} agent, {args.games} games each\n")
        print("| agent | opponent | won | drawn | lost | win rate (95% CI) | not lost (95% CI) |\n"
              "| --- | --- | --- | --- | --- | --- | --- |")
        for opponent in ["random", *[f"mcts:{n}" for n in args.mcts.split(",") if n]]:
            for name, agent in agents:
                print(_row(name, opponent, play_games(agent, games=args.games, against=opponent, seed=0)), flush=True)
        if args.raw and loaded.info["task"]["name"] == "alphazero":
            for name, agent in agents:
                info = {**agent.info, "data_meta": {**agent.info["data_meta"], "simulations": 1}}
                raw = dataclasses.replace(agent, info=info)
                print(_row(f"{name}, raw policy", "random", play_games(raw, games=args.games, against="random", seed=0)), flush=True)
        if args.perfect:
            game = agent_from_run(loaded)[0]
            positions = random_positions(game, args.perfect)
            solved = [solve(game, s) for s in positions]
            print(f"\n## against perfect play: {len(positions)} distinct positions from random play, solved by alpha-beta\n")
            print("| agent | raw policy plays an optimal move | search plays an optimal move | value head right (W/D/L) |\n"
                  "| --- | --- | --- | --- |")
            lo_hi = lambda p: "({:.0%}-{:.0%})".format(*wilson_interval(p * len(positions), len(positions)))  # noqa: E731
            cell = lambda p: "-" if p is None else f"{p:.1%} {lo_hi(p)}"  # noqa: E731
            for name, agent in agents:
                r = perfect_play(agent, positions, solved)
                print(f"| {name} | {cell(r['policy'])} | {cell(r['search'])} | {cell(r['value'])} |", flush=True)
            uniform = sum(sum(v == b for v in m.values()) / len(m) for b, m in solved) / len(solved)
            print(f"| (a uniformly random move) | {uniform:.1%} | {uniform:.1%} | - |")


if __name__ == "__main__":
    main()
