"""``task: dqn``: the deep Q-learning loop of Mnih et al. (2015), Algorithm 1, with its run folder.

Each frame: pick an action epsilon-greedily (uniformly during the first ``replay_start`` frames), step
the environment, store ``(s, a, clip(r), s', terminal)`` in the replay memory, and every ``update_every``
frames take one gradient step on a uniform minibatch towards the target network's TD target; every
``target_update`` frames the target network takes the online weights. Every ``eval_every`` frames the
policy plays ``eval_episodes`` episodes with epsilon ``eval_epsilon`` and a ``metrics.jsonl`` row is written.

Exact resume: a checkpoint holds both networks, the optimizer, every counter, the generators, the
environment's whole state (mid-episode) and the replay memory. When the memory would take more than half
the free disk it is left out (said once); a resumed run then first refills it with ``replay_start``
frames of its current epsilon-greedy policy, without learning (the warm-up), and continues from there.
"""

from __future__ import annotations

import copy
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config.schema import Config
from ..errors import ConfigError
from ..models import build_model, model_info
from ..plots import plot_returns
from ..runs import save_model
from ..runtime import resolve_device, setup_runtime
from ..tasks import create_task
from ..tasks.interactive import DQNTask
from ..train import build_optimizer
from ..train import checkpoint as ckpt
from ..train.signals import handle_stop_signals
from ..train.trainer import TrainingInterrupted
from .dqn import dqn_update, epsilon_at, epsilon_greedy
from .envs import make_env, require
from .evaluate import evaluate_policy, summarize_returns
from .replay import ReplayMemory, check_replay_fits, replay_bytes
from .session import RunSession, open_session
from .vector import VectorEnv

__all__ = ["DQNAgent", "run_dqn", "build_q_network", "input_scale"]


def input_scale(env_name: str) -> float:
    """What multiplies uint8 observations before the network: 1 for MinAtar's 0/1 channels, 1/255 for pixels."""
    return 1.0 / 255.0 if env_name.lower().startswith(("atari:", "ale/")) else 1.0


def build_q_network(cfg: Config, env: VectorEnv) -> tuple[nn.Module, dict[str, Any]]:
    """The configured Q-network for ``env``'s actions and channels, and its ``model.json`` build record."""
    spec = cfg.model.as_dict()
    name = spec.get("name")
    if name is None or model_info(name).get("task") != "reinforcement":
        raise ConfigError(
            f"model {name or 'spec'!r} is not a Q-network; use model.name=dqn_minatar (MinAtar) or model.name=dqn (Atari)"
        )
    c, h, w = env.obs_shape
    torch.manual_seed(cfg.seed)
    model = build_model(dict(spec), num_classes=None, in_channels=c, data_kwargs={"num_actions": env.num_actions})
    shape = tuple(getattr(model, "input_shape", ()))
    if shape != (c, h, w):
        raise ConfigError(f"model {name!r} takes {shape} inputs; environment {env.name!r} gives {(c, h, w)}")
    build = {**spec, "in_channels": c, "num_actions": env.num_actions}
    return model, build


class DQNAgent:
    """Everything a DQN run carries from frame to frame (what a checkpoint holds).

    With ``env.num_envs`` = N copies, one :meth:`step` picks N actions with one forward pass and then
    takes each copy's frame in turn: store the transition, count the frame, learn when the frame count
    says so, sync the target when it says so. So updates per frame, epsilon per frame and the target
    period mean what they mean with one copy; N = 1 is exactly the single-environment loop.
    """

    def __init__(self, task: DQNTask, cfg: Config, envs: VectorEnv, device: torch.device) -> None:
        self.task, self.env, self.device = task, envs, device
        self.online, self.build = build_q_network(cfg, envs)
        self.online.to(device).train()
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        self.optimizer = _optimizer(self.online, cfg)
        self.memory = ReplayMemory(task.replay_size, envs.obs_shape, device=device)
        self.act_gen = torch.Generator().manual_seed(cfg.seed)
        self.sample_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.scale = input_scale(cfg.env.name or "")
        self.max_episode_frames = cfg.env.max_episode_frames
        self.env_name = envs.name
        n = len(envs)
        self.obs = envs.reset_all()  # (N, C, H, W) uint8
        self.frame = self.episodes = self.updates = 0
        self.episode_return, self.episode_frames = [0.0] * n, [0] * n
        self.recent: list[float] = []  # training-episode returns since the last row
        self.loss_sum, self.loss_count = 0.0, 0
        self.warmup_until = 0  # after a resume without the memory: no learning before this frame
        self.rows: list[dict[str, Any]] = []
        self.random_return: dict[str, float] = {}

    # ------------------------------------------------------------------------------------------- one step
    def act(self) -> list[int]:
        n = len(self.env)
        if self.frame < self.task.replay_start:
            return [epsilon_greedy(torch.zeros(self.env.num_actions), 1.0, self.act_gen) for _ in range(n)]
        eps = self.epsilon()
        with torch.no_grad():
            x = torch.from_numpy(self.obs).to(self.device).float() * self.scale
            q = self.online(x).cpu()  # one batched forward pass for every copy
        return [epsilon_greedy(q[i], eps, self.act_gen) for i in range(n)]

    def epsilon(self) -> float:
        t = self.task
        # The schedule counts from the end of the initial random play, as in the MinAtar reference code.
        return epsilon_at(max(0, self.frame - t.replay_start), start=t.epsilon_start, end=t.epsilon_end, frames=t.epsilon_frames)

    def step(self) -> None:
        """One frame of every copy (``num_envs`` frames)."""
        for i, action in enumerate(self.act()):
            self._frame(i, action)

    def _frame(self, i: int, action: int) -> None:
        t = self.task
        next_obs, reward, terminal, life_lost = self.env.step_one(i, action)
        self.episode_return[i] += reward
        self.episode_frames[i] += 1
        clipped = float(np.clip(reward, -1.0, 1.0))  # Nature: rewards clipped to [-1, 1] for learning
        self.memory.add(torch.from_numpy(self.obs[i]), action, clipped, torch.from_numpy(next_obs), terminal or life_lost)
        self.obs[i] = next_obs
        self.frame += 1
        if terminal or self.episode_frames[i] >= self.max_episode_frames:
            self.recent.append(self.episode_return[i])
            self.episodes += 1
            self.episode_return[i], self.episode_frames[i] = 0.0, 0
            self.obs[i] = self.env.reset(i)
        if self.frame >= t.replay_start and self.frame >= self.warmup_until and self.frame % t.update_every == 0:
            batch = self.memory.sample(t.batch_size, self.sample_gen)
            loss = dqn_update(self.online, self.target, self.optimizer, batch, gamma=t.gamma, double=t.double, loss=t.loss, scale=self.scale)
            self.loss_sum += float(loss)
            self.loss_count += 1
            self.updates += 1
        if self.frame % t.target_update == 0:
            self.target.load_state_dict(self.online.state_dict())

    # ------------------------------------------------------------------------------------------- state
    def state(self, *, with_replay: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors: dict[str, torch.Tensor] = {}
        tensors.update({f"online/{k}": v for k, v in self.online.state_dict().items()})
        tensors.update({f"target/{k}": v for k, v in self.target.state_dict().items()})
        opt_t, opt_m = ckpt.optimizer_state_to_flat(self.optimizer)
        tensors.update(opt_t)
        rng_t, rng_m = ckpt.rng_state()
        tensors.update(rng_t)
        tensors["gen/act"] = self.act_gen.get_state()
        tensors["gen/sample"] = self.sample_gen.get_state()
        tensors["agent/obs"] = torch.from_numpy(self.obs.copy())
        env_meta, env_arrays = self.env.get_state()
        tensors.update({f"env/{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in env_arrays.items()})
        if with_replay:
            tensors.update(self.memory.state_tensors())
        meta = {
            "frame": self.frame, "episodes": self.episodes, "updates": self.updates, "num_envs": len(self.env),
            "episode_return": self.episode_return, "episode_frames": self.episode_frames, "recent": self.recent,
            "loss_sum": self.loss_sum, "loss_count": self.loss_count, "warmup_until": self.warmup_until,
            "rows": self.rows, "random_return": self.random_return, "optimizer": opt_m, "rng": rng_m, "env": env_meta,
            "env_arrays": sorted(env_arrays), "replay": {"saved": with_replay, "position": self.memory.position, "size": self.memory.size},
        }
        return tensors, meta

    def load(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any], log: Any) -> None:
        if "num_envs" not in meta:  # a checkpoint of the first, single-environment loop
            meta = {**meta, "num_envs": 1, "episode_return": [meta["episode_return"]], "episode_frames": [meta["episode_frames"]],
                    "env": [meta["env"]], "env_arrays": [f"0/{k}" for k in meta["env_arrays"]]}
            tensors = {**tensors, "agent/obs": tensors["agent/obs"].unsqueeze(0),
                       **{f"env/0/{k[4:]}": v for k, v in tensors.items() if k.startswith("env/")}}
        self.online.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("online/")})
        self.target.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("target/")})
        ckpt.optimizer_state_from_flat(self.optimizer, tensors, meta["optimizer"])
        ckpt.set_rng_state(tensors, meta["rng"])
        self.act_gen.set_state(tensors["gen/act"])
        self.sample_gen.set_state(tensors["gen/sample"])
        self.obs = tensors["agent/obs"].numpy().copy()
        self.env.set_state(meta["env"], {k: tensors[f"env/{k}"].numpy() for k in meta["env_arrays"]})
        for key in ("frame", "episodes", "updates", "loss_count", "warmup_until"):
            setattr(self, key, int(meta[key]))
        self.episode_return = [float(v) for v in meta["episode_return"]]
        self.episode_frames = [int(v) for v in meta["episode_frames"]]
        self.loss_sum = float(meta["loss_sum"])
        self.recent, self.rows, self.random_return = list(meta["recent"]), list(meta["rows"]), dict(meta["random_return"])
        replay = meta["replay"]
        if replay["saved"]:
            self.memory.load_tensors(tensors, position=replay["position"], size=replay["size"])
        else:
            self.warmup_until = self.frame + self.task.replay_start
            log(f"the checkpoint holds no replay memory: refilling it with {self.task.replay_start:,} frames of the "
                f"current policy before learning resumes (frame {self.warmup_until:,})")


def _optimizer(model: nn.Module, cfg: Config) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.name == "rmsprop":
        # DeepMind's RMSProp (Graves 2013, as in the Nature code) is the centered form with eps inside the
        # root; torch's centered RMSprop adds eps outside it, the one difference (MinAtar's code uses it too).
        # foreach: one fused call per step for all parameter tensors; on CPU torch's default is the per-tensor loop,
        # whose Python overhead is a visible share of a step of MinAtar's small network.
        return torch.optim.RMSprop(model.parameters(), lr=o.lr, alpha=o.alpha, eps=o.eps, momentum=o.momentum, centered=True,
                                   foreach=True)
    return build_optimizer(model, o)


def _replay_fits_on_disk(memory: ReplayMemory, run_dir: Path) -> bool:
    need = replay_bytes(memory.capacity, memory.obs_shape)
    return need < 0.5 * shutil.disk_usage(run_dir).free


def _row(agent: DQNAgent, session: RunSession, since: tuple[float, int]) -> dict[str, Any]:
    t = agent.task
    seconds = time.perf_counter() - since[0]  # training time only: the evaluation below is not counted
    e = session.cfg.env
    returns = evaluate_policy(
        agent.online, agent.env_name, episodes=t.eval_episodes, epsilon=t.eval_epsilon, seed=session.cfg.seed + 1000 + len(agent.rows),
        scale=agent.scale, sticky_actions=e.sticky_actions, max_frames=e.max_episode_frames, device=agent.device,
    )
    stats = summarize_returns(returns)
    row = {
        "frames": agent.frame, "episodes": agent.episodes, "updates": agent.updates, "epsilon": agent.epsilon(),
        "eval_return_mean": stats["mean"], "eval_return_median": stats["median"], "eval_return_std": stats["std"],
        "train_return_mean": float(np.mean(agent.recent)) if agent.recent else None,
        "loss": agent.loss_sum / agent.loss_count if agent.loss_count else None,
        "seconds": seconds, "frames_per_second": (agent.frame - since[1]) / max(seconds, 1e-9),
    }
    agent.recent, agent.loss_sum, agent.loss_count = [], 0.0, 0
    return row


def _line(row: dict[str, Any], frames: int) -> str:
    loss = "-" if row["loss"] is None else f"{row['loss']:.4f}"
    return (f"frames {row['frames']:,}/{frames:,}  episodes {row['episodes']:,}  eval return {row['eval_return_mean']:.2f} "
            f"(median {row['eval_return_median']:.2f})  loss {loss}  eps {row['epsilon']:.3f}  {row['frames_per_second']:.0f} frames/s")


def _check_env(cfg: Config) -> str:
    """The configured environment's name, once it is known to exist and its package to be installed: checked
    before the run folder is made, so a bad name or a missing package leaves nothing behind. (The replay
    memory's size is checked then too, from the environment's observation shape: see :func:`_precheck`.)"""
    name = cfg.env.name
    if name is None:
        raise ConfigError("task dqn needs an environment: --set env.name=breakout (asterix, freeway, seaquest, "
                          "space_invaders, or atari:<Game> such as atari:Breakout)")
    if name.startswith("atari:"):
        from .atari import check_atari_game

        check_atari_game(name[6:])
    else:
        require("minatar", "minatar", f"MinAtar environment {name!r}")
    return name


def _precheck(cfg: Config) -> None:
    """Everything that can be refused before the run folder exists: the task's settings, the environment
    and its package, and whether the replay memory fits in memory (from the observation shape alone)."""
    task = create_task(cfg.task.name, **cfg.task.kwargs())
    assert isinstance(task, DQNTask)
    name = _check_env(cfg)
    probe = make_env(name, sticky_actions=cfg.env.sticky_actions)
    check_replay_fits(task.replay_size, probe.obs_shape, device=resolve_device(cfg.train.device))


def _crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of ``every`` lies in ``(before, after]``: with N environments the frame counter
    moves N at a time."""
    return after // every > before // every


def run_dqn(
    cfg: Config | None, *, out: str | Path | None = None, overwrite: bool = False, resume: str | Path | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train a DQN agent as configured (``task: {name: dqn, ...}``, ``env: {name: ...}``) and write its run
    folder; returns the summary.

    With ``env.num_envs`` = N, frame counts move N at a time: evaluations and checkpoints happen when the
    count passes a multiple of ``task.eval_every`` / ``task.checkpoint_every``, and the run ends at the
    first whole vector step at or past ``task.frames`` (exactly there when N divides them).

    Raises:
        TrainingInterrupted: SIGTERM/SIGINT, after a checkpoint (exit 75; ``cnnkit train --resume RUN``).
    """
    if cfg is not None:
        _precheck(cfg)
    session = open_session(cfg, out=out, overwrite=overwrite, resume=resume, quiet=quiet)
    cfg = session.cfg
    task = create_task(cfg.task.name, **cfg.task.kwargs())
    assert isinstance(task, DQNTask)
    env_name = _check_env(cfg)
    device = resolve_device(cfg.train.device)
    setup_runtime(threads=cfg.train.threads, deterministic=cfg.train.deterministic, device=device)
    e = cfg.env
    envs = VectorEnv(env_name, num_envs=e.num_envs, seed=cfg.seed, sticky_actions=e.sticky_actions, training=True)
    agent = DQNAgent(task, cfg, envs, device)
    progress, run_dir = session.progress, session.run_dir
    if session.resumed is not None:
        agent.load(session.resumed.tensors, session.resumed.meta, progress.message)
        session.metrics.rewrite(agent.rows)
        progress.message(f"resumed at frame {agent.frame:,} ({session.resumed.path.name})")
    with_replay = task.save_replay and _replay_fits_on_disk(agent.memory, run_dir)
    if task.save_replay and not with_replay:
        progress.message("the replay memory would take more than half the free disk: checkpoints leave it out "
                         f"(a resumed run refills it with {task.replay_start:,} frames first)")
    if not agent.random_return:
        returns = evaluate_policy(None, env_name, episodes=task.eval_episodes, epsilon=1.0, seed=cfg.seed + 999,
                                  sticky_actions=e.sticky_actions, max_frames=e.max_episode_frames)
        agent.random_return = summarize_returns(returns)
        progress.message(f"random policy: mean return {agent.random_return['mean']:.2f} over {task.eval_episodes} episodes")
    since = (time.perf_counter(), agent.frame)
    with handle_stop_signals(session.stop) as stop:
        while agent.frame < task.frames:
            before = agent.frame
            agent.step()
            done = agent.frame >= task.frames
            if _crossed(before, agent.frame, task.eval_every) or done:
                row = _row(agent, session, since)
                agent.rows.append(row)
                session.metrics.append(row)
                progress.message(_line(row, task.frames))
                since = (time.perf_counter(), agent.frame)
            if stop.requested or _crossed(before, agent.frame, task.checkpoint_every) or done:
                session.checkpoint(agent.frame, *agent.state(with_replay=with_replay))
            if stop.requested:
                raise TrainingInterrupted(
                    f"interrupted ({stop.signal_name}) at frame {agent.frame:,}; resume with cnnkit train --resume {run_dir}",
                    run_dir=run_dir,
                )
    return _finish(agent, session)


def _finish(agent: DQNAgent, session: RunSession) -> dict[str, Any]:
    task, run_dir, cfg = agent.task, session.run_dir, session.cfg
    e = cfg.env
    save_model(
        run_dir, agent.online, build=agent.build,
        preprocessing={"input_shape": list(agent.env.obs_shape), "scale": agent.scale},
        extra={"task": {"name": "dqn", **cfg.task.kwargs()}, "kind": "environment",
               "data_meta": {"env": agent.env_name, "num_actions": agent.env.num_actions, "sticky_actions": e.sticky_actions,
                             "max_episode_frames": e.max_episode_frames, "eval_epsilon": task.eval_epsilon}},
    )
    plot_returns(agent.rows, run_dir / "plots" / "returns.png", baseline=agent.random_return.get("mean"), title=agent.env_name)
    last = agent.rows[-1] if agent.rows else {}
    best = max(agent.rows, key=lambda r: r["eval_return_mean"]) if agent.rows else {}
    summary = {
        "task": "dqn", "env": agent.env_name, "num_envs": len(agent.env), "run_dir": str(run_dir), "name": cfg.name, "model": agent.build.get("name"),
        "seed": cfg.seed, "frames": agent.frame, "episodes": agent.episodes, "updates": agent.updates,
        "test_return_mean": last.get("eval_return_mean"), "test_return_median": last.get("eval_return_median"),
        "best_return_mean": best.get("eval_return_mean"), "best_return_frames": best.get("frames"),
        "random_return_mean": agent.random_return.get("mean"), "random_return_median": agent.random_return.get("median"),
        "frames_per_second": float(np.mean([r["frames_per_second"] for r in agent.rows])) if agent.rows else None,
        "wall_seconds": time.perf_counter() - session.started,
    }
    session.write_summary(summary)
    if last:
        print(f"eval return: {last['eval_return_mean']:.2f} (median {last['eval_return_median']:.2f}; random policy "
              f"{agent.random_return.get('mean', float('nan')):.2f}) after {agent.frame:,} frames", flush=True)
    print(f"run folder: {run_dir}", flush=True)
    return summary
