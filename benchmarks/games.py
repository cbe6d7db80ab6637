"""Board games: win rates of a trained agent against a random player and OpenSpiel's MCTS bot.

Trains ``configs/alphazero-tictactoe.yaml`` (or takes ``--run RUN``, any alphazero/blondie24 run folder) and
plays ``--games`` games against each opponent, alternating who moves first; reports wins / draws / losses
and the win rate's 95% Wilson interval. OpenSpiel's ``MCTSBot`` is plain UCT (c = 2) with one random
rollout per leaf and N simulations per move (``--mcts 25,100``). Perfect play draws tic-tac-toe, so against a
strong opponent "not losing" is the measure; the table shows both.

    python benchmarks/games.py [--run RUN] [--games 40] [--mcts 25,100] [--config configs/alphazero-tictactoe.yaml]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from cnnkit.config import load_config
from cnnkit.games.play import play_games
from cnnkit.games.session_tools import wilson_interval
from cnnkit.runs import load_model
from cnnkit.train import fit

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=None)
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "alphazero-tictactoe.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--games", type=int, default=40)
    ap.add_argument("--mcts", default="25,100")
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run
        if run is None:
            run = Path(tmp) / "run"
            summary = fit(load_config(args.config, args.overrides), out=run, quiet=True)
            print(f"trained {args.config.name}: {summary.get('iterations', summary.get('generations'))} rounds, "
                  f"{summary['wall_seconds']:.0f} s (measured on a loaded machine)\n")
        loaded = load_model(run)
        print(f"## {loaded.info['data_meta']['game']}: {loaded.info['task']['name']} agent, {args.games} games each\n")
        print("| opponent | won | drawn | lost | win rate (95% CI) | not lost (95% CI) |\n| --- | --- | --- | --- | --- | --- |")
        for opponent in ["random", *[f"mcts:{n}" for n in args.mcts.split(",") if n]]:
            r = play_games(loaded, games=args.games, against=opponent, seed=0)
            w_lo, w_hi = wilson_interval(r["wins"], r["games"])
            n_lo, n_hi = wilson_interval(r["wins"] + r["draws"], r["games"])
            print(f"| {opponent} | {r['wins']} | {r['draws']} | {r['losses']} | {r['wins'] / r['games']:.0%} "
                  f"({w_lo:.0%}-{w_hi:.0%}) | {(r['wins'] + r['draws']) / r['games']:.0%} ({n_lo:.0%}-{n_hi:.0%}) |")


if __name__ == "__main__":
    main()
