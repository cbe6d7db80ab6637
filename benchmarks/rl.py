"""Deep Q-learning on MinAtar: frames/s of cnnkit's agent against MinAtar's own DQN, and return after a budget.

1. Frames per second while learning (one update of batch 32 per frame, the MinAtar network, centered
   RMSProp, epsilon held at 0.1, the regime of almost all of a 5M-frame run), in one process on this machine:
   - cnnkit's agent (:class:`cnnkit.rl.loop.DQNAgent`, what ``cnnkit train configs/dqn-minatar.yaml`` runs),
     with ``env.num_envs`` = 1 and N copies stepped as one vector;
   - the reference: ``examples/dqn.py`` of MinAtar's repository (Young & Tian 2019,
     https://github.com/kenjyoung/MinAtar), run unmodified from ``--reference PATH`` (the pip package does
     not ship ``examples/``, and the file is GPL-3.0, so it is not copied here: clone the repository and
     point at it). Its constants are set for the timing (``NUM_FRAMES``, ``REPLAY_START_SIZE``, ``EPSILON``),
     and the clock starts at its first gradient step. Without ``--reference``, a re-creation of its design
     (a list of namedtuples of float tensors, ``random.sample`` + ``torch.cat`` per minibatch) stands in,
     labelled as such.
   Repeats are interleaved so load on a shared machine hits every contestant alike; ratio = / reference.
   The clock is the process's CPU time (``--clock cpu``, the default; one thread, so it is the compute
   each frame took), which other processes on a shared machine disturb far less than wall time does;
   ``--clock wall`` for an idle machine.
2. ``--budget N``: ``cnnkit train configs/dqn-minatar.yaml`` for N frames per game (``--games``), reporting
   the final evaluation return (20 episodes at epsilon 0.05), the mean return of the training episodes of
   the last interval (epsilon-greedy, the measure of the paper's curves), the random policy's, next to the
   MinAtar paper's DQN curve (Young & Tian 2019, Fig. 2; also ``img/learning_curves.gif`` of the repository:
   a moving average of 100 training-episode returns, 30 seeds) read off at 0.1M and 5M frames.

    python benchmarks/rl.py [--reference MinAtar/examples/dqn.py] [--frames 2000] [--repeats 3] [--envs 1,4,16]
                            [--budget 100000] [--games breakout,asterix]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import statistics
import tempfile
import time
from collections import namedtuple
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F

from cnnkit.config import load_config
from cnnkit.models import create_model
from cnnkit.rl.envs import make_env
from cnnkit.rl.loop import DQNAgent, run_dqn
from cnnkit.rl.vector import VectorEnv
from cnnkit.tasks import create_task

CLOCK = {"cpu": time.process_time, "wall": time.perf_counter}
clock = time.process_time
RECIPE = Path(__file__).resolve().parents[1] / "configs" / "dqn-minatar.yaml"
Transition = namedtuple("Transition", "state next_state action reward terminal")

# Young & Tian (2019), Fig. 2 (DQN, the blue curves), read off by eye: (at 0.1M frames, at 5M frames).
# The early values sit on a steep rise and are rough; the final ones are to about +-1 (+-3 for space_invaders).
PAPER_DQN = {
    "breakout": ("~3-4", "~10"), "asterix": ("~0.5", "~17"), "freeway": ("~5.5", "~50"),
    "seaquest": ("~0.5", "~20"), "space_invaders": ("~10-20", "~43"),
}


def cnnkit_fps(game: str, frames: int, num_envs: int, warm: int) -> float:
    """Learning frames/s of cnnkit's agent, epsilon fixed at 0.1, learning from frame ``warm`` on."""
    cfg = load_config(RECIPE, [
        f"env.name={game}", f"env.num_envs={num_envs}", f"task.replay_start={warm}", "task.epsilon_start=0.1",
        "task.epsilon_end=0.1", f"task.frames={warm + frames}",
    ])
    task = create_task(cfg.task.name, **cfg.task.kwargs())
    envs = VectorEnv(game, num_envs=num_envs, seed=0, sticky_actions=cfg.env.sticky_actions)
    agent = DQNAgent(task, cfg, envs, torch.device("cpu"))  # type: ignore[arg-type]
    while agent.frame < warm:
        agent.step()
    start, first = clock(), agent.frame
    while agent.frame < warm + frames:
        agent.step()
    return (agent.frame - first) / (clock() - start)


def _load_reference(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("minatar_reference_dqn", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"--reference {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_fps(module: ModuleType, game: str, frames: int, warm: int) -> float:
    """Learning frames/s of MinAtar's ``examples/dqn.py`` itself: its ``dqn()`` for ``warm + frames`` frames,
    timed from its first ``train`` call (the first gradient step) to its return."""
    from minatar import Environment

    module.NUM_FRAMES, module.REPLAY_START_SIZE = warm + frames, warm
    module.EPSILON = module.END_EPSILON = 0.1  # its schedule, held at its end value as ours is
    module.device = torch.device("cpu")
    train, started = module.train, []

    def timed_train(*args: object) -> None:
        if not started:
            started.append(clock())
        train(*args)

    module.train = timed_train
    random.seed(0)
    env = Environment(game)  # sticky actions 0.1, as in the recipe
    env.seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            module.dqn(env, False, False, os.path.join(tmp, game))
        finally:
            module.train = train
    # dqn() learns from frame REPLAY_START_SIZE + 1 on (its `t > REPLAY_START_SIZE`)
    return (frames - 1) / (clock() - started[0])


def recreated_reference_fps(game: str, frames: int, warm: int) -> float:
    """The stand-in when MinAtar's file is not at hand: its design re-created (see the module docstring)."""
    env = make_env(game)
    env.seed(0)
    model = create_model("dqn_minatar", in_channels=env.obs_shape[0], num_actions=env.num_actions)
    target = create_model("dqn_minatar", in_channels=env.obs_shape[0], num_actions=env.num_actions)
    opt = torch.optim.RMSprop(model.parameters(), lr=2.5e-4, alpha=0.95, eps=0.01, centered=True)
    buffer: list[Transition] = []
    rnd = random.Random(0)
    s = torch.from_numpy(env.reset()).float().unsqueeze(0)
    start = clock()
    for t in range(warm + frames):
        if t == warm:
            start = clock()
        if rnd.random() < 0.1:
            a = rnd.randrange(env.num_actions)
        else:
            with torch.no_grad():
                a = int(model(s).max(1)[1])
        nxt, r, term, _ = env.step(a)
        s2 = torch.from_numpy(nxt).float().unsqueeze(0)
        buffer.append(Transition(s, s2, torch.tensor([[a]]), torch.tensor([[r]]).float(), torch.tensor([[term]])))
        buffer = buffer[-100_000:]
        s = torch.from_numpy(env.reset()).float().unsqueeze(0) if term else s2
        if t >= warm:
            b = Transition(*zip(*rnd.sample(buffer, 32)))
            states, next_states = torch.cat(b.state), torch.cat(b.next_state)
            actions, rewards, terminal = torch.cat(b.action), torch.cat(b.reward), torch.cat(b.terminal)
            q = model(states).gather(1, actions)
            with torch.no_grad():
                nq = target(next_states).max(1)[0].unsqueeze(1) * (~terminal).float()
            loss = F.smooth_l1_loss(q, rewards + 0.99 * nq)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return frames / (clock() - start)


def _ms(values: list[float]) -> str:
    return f"{statistics.fmean(values):.0f} ± {statistics.stdev(values):.0f}" if len(values) > 1 else f"{values[0]:.0f}"


def throughput(games: list[str], args: argparse.Namespace) -> None:
    module = _load_reference(args.reference) if args.reference else None
    ref_name = "MinAtar examples/dqn.py" if module else "re-created reference design"
    envs = [int(n) for n in args.envs.split(",") if n]
    print(f"## frames/s while learning ({args.frames:,} frames x {args.repeats} repeats, {args.threads} thread(s), {args.clock} clock, "
          f"load average {os.getloadavg()[0]:.1f})\n")
    print(f"| game | {ref_name} | " + " | ".join(f"cnnkit, {n} env(s)" for n in envs) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in envs) + " |")
    for game in games:
        ref: list[float] = []
        ours: dict[int, list[float]] = {n: [] for n in envs}
        for _ in range(args.repeats):  # interleaved, so load on a shared machine hits all alike
            ref.append(reference_fps(module, game, args.frames, args.warm) if module else
                       recreated_reference_fps(game, args.frames, args.warm))
            for n in envs:
                ours[n].append(cnnkit_fps(game, args.frames, n, args.warm))
        base = statistics.fmean(ref)
        cells = [f"{_ms(ours[n])} ({statistics.fmean(ours[n]) / base:.2f}x)" for n in envs]
        print(f"| {game} | {_ms(ref)} (1.00x) | " + " | ".join(cells) + " |")


def returns_after_budget(games: list[str], budget: int, num_envs: int) -> None:
    print(f"\n## return after {budget:,} frames (configs/dqn-minatar.yaml, seed 0, env.num_envs={num_envs}, "
          f"load average {os.getloadavg()[0]:.1f})\n")
    print("| game | eval return, mean / median (eps 0.05) | training episodes, last interval | random policy | "
          "paper DQN at 0.1M / 5M frames | frames/s | wall |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for game in games:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = load_config(RECIPE, [f"env.name={game}", f"env.num_envs={num_envs}", f"task.frames={budget}"])
            s = run_dqn(cfg, out=Path(tmp) / "run", quiet=True)
            rows = [r for r in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines() if r]
        import json

        last = json.loads(rows[-1])
        train = last.get("train_return_mean")
        early, final = PAPER_DQN.get(game, ("-", "-"))
        print(f"| {game} | {s['test_return_mean']:.2f} / {s['test_return_median']:.2f} | "
              f"{'-' if train is None else f'{train:.2f}'} | {s['random_return_mean']:.2f} | {early} / {final} | "
              f"{s['frames_per_second']:.0f} | {s['wall_seconds'] / 60:.1f} min |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=Path, default=None, help="MinAtar's examples/dqn.py (from a clone of its repository)")
    ap.add_argument("--frames", type=int, default=2000, help="timed learning frames per repeat")
    ap.add_argument("--warm", type=int, default=500, help="random frames before learning (and the clock) start")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--envs", default="1,4,16", help="env.num_envs values to time")
    ap.add_argument("--budget", type=int, default=0, help="frames of cnnkit train per game (0: skip)")
    ap.add_argument("--budget-envs", type=int, default=None, help="env.num_envs of the budget runs (default: the recipe's)")
    ap.add_argument("--games", default="breakout")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clock", choices=sorted(CLOCK), default="cpu", help="cpu: process CPU time; wall: elapsed time")
    args = ap.parse_args()
    global clock
    clock = CLOCK[args.clock]
    torch.set_num_threads(args.threads)
    games = [g.strip() for g in args.games.split(",") if g.strip()]
    if args.frames:
        throughput(games, args)
    if args.budget:
        returns_after_budget(games, args.budget, args.budget_envs or load_config(RECIPE).env.num_envs)


if __name__ == "__main__":
    main()
