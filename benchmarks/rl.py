"""Deep Q-learning on MinAtar: frames/s of cnnkit's agent, and mean return after a fixed budget.

1. Frames per second while learning (one update per frame, batch 32, the MinAtar network), for cnnkit's
   loop (uint8 replay in preallocated tensors, one gather per minibatch) and for a re-creation of the
   design of MinAtar's reference ``examples/dqn.py`` (a Python list of namedtuples of float tensors,
   ``random.sample`` then ``torch.cat`` per minibatch, the same network, loss and optimizer), timed in the
   same process on the same frames. The reference file itself is not shipped with the ``minatar`` package
   (it lives in the repository's ``examples/``), hence the re-creation; the ratio is cnnkit / reference.
2. ``--budget N``: ``cnnkit train configs/dqn-minatar.yaml`` for N frames per game, reporting the final
   evaluation return (mean over the recipe's 20 episodes) next to the random policy's. The MinAtar paper
   reports learning curves over 5M frames (its Fig. 2), not a table, so no published number is quoted.

    python benchmarks/rl.py [--frames 2000] [--repeats 3] [--budget 0] [--games breakout,asterix]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections import namedtuple
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnkit.config import load_config
from cnnkit.models import create_model
from cnnkit.rl.dqn import dqn_update, epsilon_greedy
from cnnkit.rl.envs import make_env
from cnnkit.rl.loop import run_dqn
from cnnkit.rl.replay import ReplayMemory

RECIPE = Path(__file__).resolve().parents[1] / "configs" / "dqn-minatar.yaml"
Transition = namedtuple("Transition", "state next_state action reward terminal")


def _optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(model.parameters(), lr=2.5e-4, alpha=0.95, eps=0.01, centered=True)


def cnnkit_fps(game: str, frames: int, warm: int = 500) -> float:
    env = make_env(game)
    env.seed(0)
    model = create_model("dqn_minatar", in_channels=env.obs_shape[0], num_actions=env.num_actions)
    target = create_model("dqn_minatar", in_channels=env.obs_shape[0], num_actions=env.num_actions)
    opt, gen, sample = _optimizer(model), torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    mem = ReplayMemory(100_000, env.obs_shape)
    obs = env.reset()
    start = None
    for t in range(warm + frames):
        if t == warm:
            start = time.perf_counter()
        with torch.no_grad():
            q = model(torch.from_numpy(obs).float().unsqueeze(0))[0]
        a = epsilon_greedy(q, 0.1, gen)
        nxt, r, term, _ = env.step(a)
        mem.add(torch.from_numpy(obs), a, r, torch.from_numpy(nxt), term)
        obs = env.reset() if term else nxt
        if len(mem) >= 32:
            dqn_update(model, target, opt, mem.sample(32, sample), gamma=0.99, double=False, loss="huber", scale=1.0)
    return frames / (time.perf_counter() - start)


def reference_style_fps(game: str, frames: int, warm: int = 500) -> float:
    env = make_env(game)
    env.seed(0)
    model = create_model("dqn_minatar", in_channels=env.obs_shape[0], num_actions=env.num_actions)
    target = create_model("dqn_minatar", in_channels=env.obs_shape[0], num_actions=env.num_actions)
    opt = _optimizer(model)
    buffer: list[Transition] = []
    rnd = random.Random(0)
    s = torch.from_numpy(env.reset()).float().unsqueeze(0)
    start = None
    for t in range(warm + frames):
        if t == warm:
            start = time.perf_counter()
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
        if len(buffer) >= 32:
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
    return frames / (time.perf_counter() - start)


def _ms(values: list[float]) -> str:
    return f"{statistics.fmean(values):.0f} ± {statistics.pstdev(values):.0f}" if len(values) > 1 else f"{values[0]:.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2000, help="timed learning frames per repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget", type=int, default=0, help="frames of cnnkit train per game (0: skip)")
    ap.add_argument("--games", default="breakout")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    games = [g.strip() for g in args.games.split(",") if g.strip()]
    print(f"## frames/s while learning ({args.frames} frames x {args.repeats} repeats, {args.threads} thread(s))\n")
    print("| game | cnnkit | reference-style | ratio |\n| --- | --- | --- | --- |")
    for game in games:
        ours, ref = [], []
        for _ in range(args.repeats):  # interleaved, so load on a shared machine hits both alike
            ours.append(cnnkit_fps(game, args.frames))
            ref.append(reference_style_fps(game, args.frames))
        print(f"| {game} | {_ms(ours)} | {_ms(ref)} | {statistics.fmean(ours) / statistics.fmean(ref):.2f}x |")
    if args.budget:
        print(f"\n## return after {args.budget:,} frames (configs/dqn-minatar.yaml, seed 0)\n")
        print("| game | eval return (mean / median) | random policy | frames/s |\n| --- | --- | --- | --- |")
        for game in games:
            with tempfile.TemporaryDirectory() as tmp:
                cfg = load_config(RECIPE, [f"task.env={game}", f"task.frames={args.budget}",
                                           f"task.eval_every={args.budget}", f"task.checkpoint_every={args.budget}"])
                s = run_dqn(cfg, out=Path(tmp) / "run", quiet=True)
            print(f"| {game} | {s['test_return_mean']:.2f} / {s['test_return_median']:.2f} | {s['random_return_mean']:.2f} | "
                  f"{s['frames_per_second']:.0f} |")


if __name__ == "__main__":
    main()
