"""``task: move-prediction``: the policy network trained to predict the move played in recorded games
(Clark & Storkey 2015, "Training deep convolutional neural networks to play Go"; the supervised policy
network of AlphaGo, Silver et al. 2016). Reported: move-prediction accuracy on held-out games (the
network's most probable legal move equals the move played).

Deviations:
    The network is :func:`~cnnkit.models.alphazero_resnet` (its value output is not trained here) on
    OpenSpiel's observation planes, not Clark & Storkey's 7-layer network on their feature planes (with
    ko and liberty features); no data augmentation by the board's eight symmetries.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .._text import safe_text
from ..config.schema import Config
from ..errors import DataError
from ..plots import plot_series
from ..runs import save_model
from ..runtime import setup_runtime
from ..tasks import create_task
from ..tasks.interactive import MovePredictionTask
from ..train import build_optimizer
from ..train import checkpoint as ckpt
from ..train.signals import handle_stop_signals
from ..train.trainer import TrainingInterrupted
from .alphazero import build_game_network
from .openspiel import board_tensor, game_facts, legal_mask, load_game
from .sgf import parse_sgf, sgf_to_action

__all__ = ["read_games", "positions", "run_move_prediction"]


def read_games(path: str | Path, game: Any) -> list[list[int]]:
    """Recorded games as OpenSpiel action lists: ``.sgf`` (Go) or text, one game of action ids per line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"games file not found: {path}")
    if path.suffix.lower() == ".sgf":
        size = int(game.get_parameters().get("board_size", 19))
        out = []
        for i, g in enumerate(parse_sgf(path)):
            if g.size != size:
                raise DataError(f"{path}: game {i + 1} is on a {g.size}x{g.size} board; the task's game is {size}x{size}")
            try:
                out.append([sgf_to_action(p, size) for _, p in g.moves])
            except ValueError as exc:
                raise DataError(f"{path}: game {i + 1}: {exc}") from None
        return out
    games = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if line.strip():
            try:
                games.append([int(t) for t in line.split()])
            except ValueError:
                raise DataError(f"{path}:{n}: expected action ids separated by spaces. Received: {safe_text(line, 60)!r}") from None
    if not games:
        raise DataError(f"{path}: no games (one game per line, OpenSpiel action ids separated by spaces)")
    return games


def positions(games: list[list[int]], game: Any, facts: dict[str, Any], path: str | Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every position before a move: inputs, the move played, the legal-move mask. An illegal move is a
    DataError naming the game and move."""
    xs, ys, masks = [], [], []
    for gi, moves in enumerate(games):
        state = game.new_initial_state()
        for mi, a in enumerate(moves):
            if state.is_terminal():
                break
            if a not in state.legal_actions():
                raise DataError(f"{path}: game {gi + 1}, move {mi + 1}: action {a} is not legal in that position")
            xs.append(board_tensor(state, facts))
            ys.append(a)
            masks.append(legal_mask(state, facts["num_actions"]))
            state.apply_action(a)
    if not xs:
        raise DataError(f"{path}: the games hold no moves")
    return torch.stack(xs), torch.tensor(ys), torch.stack(masks)


def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> float:
    with torch.no_grad():
        logits = model(x)[:, :-1].masked_fill(~mask, float("-inf"))
    return float((logits.argmax(1) == y).float().mean())


def run_move_prediction(cfg: Config | None, *, out: str | Path | None = None, overwrite: bool = False,
                        resume: str | Path | None = None, quiet: bool = False) -> dict[str, Any]:
    from ..rl.session import open_session

    session = open_session(cfg, out=out, overwrite=overwrite, resume=resume, quiet=quiet)
    cfg = session.cfg
    task = create_task(cfg.task.name, **cfg.task.kwargs())
    assert isinstance(task, MovePredictionTask)
    setup_runtime(threads=cfg.train.threads, deterministic=cfg.train.deterministic, device=torch.device("cpu"))
    game = load_game(task.game)
    facts = game_facts(game)
    games = read_games(task.games, game)
    order = np.random.RandomState(cfg.seed).permutation(len(games))
    n_test = max(1, int(round(task.test_fraction * len(games)))) if len(games) > 1 else 0
    test_ids, train_ids = set(order[:n_test].tolist()), order[n_test:].tolist()
    xtr, ytr, _ = positions([games[i] for i in train_ids], game, facts, task.games)
    xte, yte, mte = positions([games[i] for i in sorted(test_ids)], game, facts, task.games) if test_ids else (xtr, ytr, _)
    model, build = build_game_network(cfg, facts)
    optimizer = build_optimizer(model, cfg.optim)
    gen = torch.Generator().manual_seed(cfg.seed)
    rows: list[dict[str, Any]] = []
    epoch = 0
    if session.resumed is not None:
        t, m = session.resumed.tensors, session.resumed.meta
        model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model/")})
        ckpt.optimizer_state_from_flat(optimizer, t, m["optimizer"])
        gen.set_state(t["gen/batches"])
        rows, epoch = list(m["rows"]), int(m["epoch"])
        session.metrics.rewrite(rows)
    with handle_stop_signals(session.stop) as stop:
        while epoch < task.epochs:
            start = time.perf_counter()
            model.train()
            perm = torch.randperm(len(xtr), generator=gen)
            total, batches = 0.0, 0
            for b in range(0, len(perm), task.batch_size):
                idx = perm[b : b + task.batch_size]
                loss = F.cross_entropy(model(xtr[idx])[:, :-1], ytr[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total, batches = total + float(loss.detach()), batches + 1
                if stop.requested:
                    raise TrainingInterrupted(f"interrupted ({stop.signal_name}); resume with cnnkit train --resume "
                                              f"{session.run_dir} (the epoch is redone)", run_dir=session.run_dir)
            model.eval()
            epoch += 1
            row = {"epoch": epoch, "train_loss": total / batches, "test_move_accuracy": _accuracy(model, xte, yte, mte),
                   "train_positions": len(xtr), "test_positions": len(xte), "seconds": time.perf_counter() - start}
            rows.append(row)
            session.metrics.append(row)
            session.progress.message(f"epoch {epoch}/{task.epochs}  loss {row['train_loss']:.4f}  "
                                     f"move-prediction accuracy {row['test_move_accuracy']:.2%}")
            opt_t, opt_m = ckpt.optimizer_state_to_flat(optimizer)
            session.checkpoint(epoch, {**{f"model/{k}": v for k, v in model.state_dict().items()}, **opt_t,
                                       "gen/batches": gen.get_state()}, {"epoch": epoch, "rows": rows, "optimizer": opt_m})
    extra = {"task": {"name": "move-prediction", **cfg.task.kwargs()}, "kind": "game",
             "data_meta": {"game": task.game, **facts, "simulations": 25, "c_puct": 1.5}}
    save_model(session.run_dir, model, build=build, preprocessing={"input_shape": [facts["in_channels"], *facts["board"]]}, extra=extra)
    plot_series(rows, session.run_dir / "plots" / "move_prediction.png", x="epoch",
                panels={"accuracy": ["test_move_accuracy"], "loss": ["train_loss"]})
    last = rows[-1] if rows else {}
    summary = {"task": "move-prediction", "game": task.game, "run_dir": str(session.run_dir), "seed": cfg.seed,
               "epochs": epoch, "test_move_accuracy": last.get("test_move_accuracy"),
               "test_positions": len(xte), "train_positions": len(xtr), "wall_seconds": time.perf_counter() - session.started}
    session.write_summary(summary)
    if last:
        print(f"move-prediction accuracy: {last['test_move_accuracy']:.2%} on {len(xte)} held-out positions", flush=True)
    print(f"run folder: {session.run_dir}", flush=True)
    return summary
