"""Tasks that learn by acting rather than from a dataset: ``dqn``, ``alphazero``, ``blondie24``, ``move-prediction``.

They are registered like every task, so ``task: {name: dqn, frames: 100000}`` validates and its keyword
arguments are checked against the constructor here. They hold settings only: the supervised loop never
runs them (``cnnkit.train.fit`` hands them to :mod:`cnnkit.rl` and :mod:`cnnkit.games`, which own the
environment loop), so :meth:`train_step` and the metric hooks refuse to be called.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from .._checks import check_choice, check_int, check_real
from .base import Forward, StepOutput, Task, register_task

__all__ = ["AlphaZeroTask", "Blondie24Task", "DQNTask", "InteractiveTask", "MovePredictionTask", "RUNNER_TASKS"]


class InteractiveTask(Task):
    """Settings of a task with its own loop (see the module docstring)."""

    metric_names: ClassVar[tuple[str, ...]] = ()

    def settings(self) -> dict[str, Any]:
        """The validated settings, JSON-ready (what the run folder records)."""
        return dict(vars(self))

    def _no_batches(self) -> Any:
        raise NotImplementedError(f"task {self.name!r} runs its own loop (cnnkit.rl / cnnkit.games), not batches")

    def train_step(self, forward: Forward, x: Tensor, y: Tensor) -> StepOutput:
        return self._no_batches()

    def metric_state(self, device: torch.device) -> Tensor:
        return self._no_batches()

    def update_metrics(self, state: Tensor, step: StepOutput) -> None:
        self._no_batches()

    def compute_metrics(self, state: Tensor) -> dict[str, float]:
        return self._no_batches()


@register_task
class DQNTask(InteractiveTask):
    """Deep Q-learning (Mnih et al. 2015) on the config's environment; defaults follow the MinAtar paper.

    The environment is the config's ``env`` section, not an argument here (:class:`cnnkit.config.EnvConfig`):
    ``env.name`` (``breakout``, ``asterix``, ``freeway``, ``seaquest``, ``space_invaders`` of MinAtar, or
    ``atari:<Game>``), ``env.sticky_actions`` (MinAtar's default 0.1; 0.25 in Machado et al. 2018, 0 in the
    Nature paper), ``env.max_episode_frames`` (Nature: 5 minutes = 18,000 frames at 60 Hz) and
    ``env.num_envs`` (copies stepped as one vector).

    Args:
        frames: training frames (agent steps, summed over the vector's environments); the budget.
        replay_size: replay-memory capacity N (Nature: 1,000,000; MinAtar: 100,000).
        replay_start: frames of uniform random play before learning starts (Nature 50,000; MinAtar 5,000).
        batch_size: minibatch size (32).
        gamma: discount factor (0.99).
        target_update: C, frames between target-network syncs (Nature 10,000; MinAtar 1,000).
        update_every: frames between gradient steps (Nature 4; MinAtar 1).
        epsilon_start, epsilon_end, epsilon_frames: linear epsilon annealing (1 -> 0.1 over 1M frames in
            Nature; 100,000 in MinAtar).
        double: Double DQN targets (van Hasselt et al. 2016).
        loss: ``huber`` (the Nature paper's error clipping) or ``mse``.
        eval_every: frames between evaluations; eval_episodes: episodes per evaluation; eval_epsilon:
            exploration during evaluation (0.05 in Nature).
        checkpoint_every: frames between checkpoints.
        save_replay: keep the replay memory in checkpoints (exact resume); when it does not fit on disk
            or this is false, a resumed run refills it with ``replay_start`` frames of the current policy first.
    """

    name: ClassVar[str] = "dqn"
    target: ClassVar[str] = "none (the agent learns from an environment)"

    def __init__(
        self, *, frames: int = 5_000_000,
        replay_size: int = 100_000, replay_start: int = 5_000, batch_size: int = 32, gamma: float = 0.99,
        target_update: int = 1_000, update_every: int = 1, epsilon_start: float = 1.0, epsilon_end: float = 0.1,
        epsilon_frames: int = 100_000, double: bool = False, loss: str = "huber", eval_every: int = 50_000,
        eval_episodes: int = 10, eval_epsilon: float = 0.05, checkpoint_every: int = 50_000, save_replay: bool = True,
    ) -> None:
        self.frames = check_int(frames, "frames")
        self.replay_size = check_int(replay_size, "replay_size", 2)
        self.replay_start = check_int(replay_start, "replay_start", 1)
        self.batch_size = check_int(batch_size, "batch_size")
        self.gamma = check_real(gamma, "gamma", low=0, high=1)
        self.target_update = check_int(target_update, "target_update")
        self.update_every = check_int(update_every, "update_every")
        self.epsilon_start = check_real(epsilon_start, "epsilon_start", low=0, high=1)
        self.epsilon_end = check_real(epsilon_end, "epsilon_end", low=0, high=1)
        self.epsilon_frames = check_int(epsilon_frames, "epsilon_frames")
        if not isinstance(double, bool):
            raise ValueError(f"Expected double to be true or false. Received: double={double!r}")
        self.double = double
        self.loss = check_choice(loss, "loss", ("huber", "mse"))
        self.eval_every = check_int(eval_every, "eval_every")
        self.eval_episodes = check_int(eval_episodes, "eval_episodes")
        self.eval_epsilon = check_real(eval_epsilon, "eval_epsilon", low=0, high=1)
        self.checkpoint_every = check_int(checkpoint_every, "checkpoint_every")
        self.save_replay = bool(save_replay)
        if self.replay_start < self.batch_size:
            raise ValueError(f"Expected replay_start >= batch_size. Received: replay_start={replay_start}, batch_size={batch_size}")
        if self.replay_start > self.replay_size:
            raise ValueError(f"Expected replay_start <= replay_size. Received: replay_start={replay_start}, replay_size={replay_size}")


@register_task
class AlphaZeroTask(InteractiveTask):
    """AlphaZero-style self-play (Silver et al. 2017, 2018) on an OpenSpiel game, with PUCT tree search.

    Args:
        game: an OpenSpiel game name (``tic_tac_toe``, ``connect_four``, ``checkers``, ``go``; options as
            OpenSpiel writes them, e.g. ``go(board_size=9)``).
        iterations: self-play / training rounds (the budget).
        games_per_iteration: self-play games per round.
        simulations: MCTS simulations per move (800 in the paper).
        c_puct: exploration constant of PUCT.
        dirichlet_alpha, dirichlet_fraction: root noise Dir(alpha) mixed in with weight fraction (0.03 / 0.25
            for Go; alpha is scaled to the game's branching in AlphaZero).
        temperature_moves: moves played in proportion to visit counts before playing greedily (30 in the paper).
        buffer_size: positions kept for training (the latest games).
        batch_size, steps_per_iteration: SGD minibatch and steps per round.
        eval_games: games against a random player after each round (the reported win rate).
        eval_every: rounds between those evaluations (the last round is always evaluated).
        checkpoint_every: rounds between checkpoints.
        symmetries: train on each position under a random board symmetry of the game (the 8 rotations and
            reflections for tic-tac-toe and Go, the mirror for Connect Four; AlphaGo Zero's augmentation).
    """

    name: ClassVar[str] = "alphazero"
    target: ClassVar[str] = "none (learns from self-play)"

    def __init__(
        self, *, game: str = "tic_tac_toe", iterations: int = 10, games_per_iteration: int = 20, simulations: int = 25,
        c_puct: float = 1.5, dirichlet_alpha: float = 0.3, dirichlet_fraction: float = 0.25, temperature_moves: int = 4,
        buffer_size: int = 20_000, batch_size: int = 64, steps_per_iteration: int = 50, eval_games: int = 20,
        checkpoint_every: int = 1, symmetries: bool = True, eval_every: int = 1,
    ) -> None:
        if not isinstance(game, str) or not game:
            raise ValueError(f"Expected game to be an OpenSpiel game name. Received: game={game!r}")
        self.game = game
        self.iterations = check_int(iterations, "iterations")
        self.games_per_iteration = check_int(games_per_iteration, "games_per_iteration")
        self.simulations = check_int(simulations, "simulations")
        self.c_puct = check_real(c_puct, "c_puct", low=0, low_open=True)
        self.dirichlet_alpha = check_real(dirichlet_alpha, "dirichlet_alpha", low=0, low_open=True)
        self.dirichlet_fraction = check_real(dirichlet_fraction, "dirichlet_fraction", low=0, high=1)
        self.temperature_moves = check_int(temperature_moves, "temperature_moves", 0)
        self.buffer_size = check_int(buffer_size, "buffer_size")
        self.batch_size = check_int(batch_size, "batch_size")
        self.steps_per_iteration = check_int(steps_per_iteration, "steps_per_iteration")
        self.eval_games = check_int(eval_games, "eval_games", 0)
        self.checkpoint_every = check_int(checkpoint_every, "checkpoint_every")
        if not isinstance(symmetries, bool):
            raise ValueError(f"Expected symmetries to be true or false. Received: symmetries={symmetries!r}")
        self.symmetries = symmetries
        self.eval_every = check_int(eval_every, "eval_every")


@register_task
class Blondie24Task(InteractiveTask):
    """Blondie24's co-evolution of checkers evaluators (Chellapilla & Fogel 1999, 2001).

    Args:
        game: an OpenSpiel two-player game (``checkers``; ``tic_tac_toe`` for tests).
        population: parents mu (15 in the paper; as many offspring again each generation).
        generations: the budget (840 for Blondie24).
        games_per_individual: games each network plays, as red, against randomly chosen opponents (5).
        depth: minimax search depth with the evolved evaluator (4 ply in the paper, later 6-8).
        max_moves: a game longer than this is a draw (100 in the paper).
        win, loss, draw: points per game (+1, -2, 0 in the paper).
        eval_games: games against a random player after each generation.
        checkpoint_every: generations between checkpoints.
    """

    name: ClassVar[str] = "blondie24"
    target: ClassVar[str] = "none (learns by co-evolution)"

    def __init__(
        self, *, game: str = "checkers", population: int = 15, generations: int = 10, games_per_individual: int = 5,
        depth: int = 2, max_moves: int = 100, win: float = 1.0, loss: float = -2.0, draw: float = 0.0,
        eval_games: int = 10, checkpoint_every: int = 1,
    ) -> None:
        self.game = game
        self.population = check_int(population, "population", 2)
        self.generations = check_int(generations, "generations")
        self.games_per_individual = check_int(games_per_individual, "games_per_individual")
        self.depth = check_int(depth, "depth")
        self.max_moves = check_int(max_moves, "max_moves")
        self.win = check_real(win, "win")
        self.loss = check_real(loss, "loss")
        self.draw = check_real(draw, "draw")
        self.eval_games = check_int(eval_games, "eval_games", 0)
        self.checkpoint_every = check_int(checkpoint_every, "checkpoint_every")


@register_task
class MovePredictionTask(InteractiveTask):
    """Move prediction from recorded games (Clark & Storkey 2015): the policy network trained as a classifier.

    Args:
        game: an OpenSpiel game (``go(board_size=9)`` for SGF files).
        games: a file of recorded games: ``.sgf`` (one or more Go game records) or ``.txt`` (one game per
            line, OpenSpiel action ids separated by spaces).
        epochs, batch_size, lr: SGD training of the policy head (cross-entropy on the played move).
        test_fraction: games held out for the reported move-prediction accuracy.
    """

    name: ClassVar[str] = "move-prediction"
    target: ClassVar[str] = "the move played, an OpenSpiel action id"

    def __init__(
        self, *, game: str = "go(board_size=9)", games: str = "", epochs: int = 5, batch_size: int = 64,
        lr: float = 0.01, test_fraction: float = 0.2,
    ) -> None:
        if not games:
            raise ValueError("Expected games to name a file of recorded games (.sgf or .txt). Received: games=''")
        self.game = game
        self.games = games
        self.epochs = check_int(epochs, "epochs")
        self.batch_size = check_int(batch_size, "batch_size")
        self.lr = check_real(lr, "lr", low=0, low_open=True)
        self.test_fraction = check_real(test_fraction, "test_fraction", low=0, high=1, low_open=True, high_open=True)


RUNNER_TASKS: frozenset[str] = frozenset({"dqn", "alphazero", "blondie24", "move-prediction"})
"""Task names whose loop is not the supervised trainer's."""
