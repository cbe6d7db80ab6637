"""``cnnkit train`` with ``task: dqn`` end to end on MinAtar: run folder, rows, resume exactly after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cnnkit.cli import main

pytest.importorskip("minatar")

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "dqn-minatar.yaml"
TINY = [
    "task.frames=600", "task.replay_size=1000", "task.replay_start=100", "task.batch_size=8", "task.update_every=2",
    "task.target_update=50", "task.epsilon_frames=300", "task.eval_every=300", "task.eval_episodes=1",
    "task.checkpoint_every=100", "env.max_episode_frames=100", "train.threads=1",
]


def _args(out: Path, extra: list[str] = ()) -> list[str]:
    args = ["train", str(RECIPE), "--out", str(out), "--quiet"]
    for s in [*TINY, *extra]:
        args += ["--set", s]
    return args


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dqn") / "ref"
    assert main(_args(out)) == 0
    return out


def test_run_folder_rows_and_summary(reference: Path):
    for name in ("config.yaml", "env.json", "metrics.jsonl", "summary.json", "model.json", "model.safetensors", "plots/returns.png"):
        assert (reference / name).is_file(), name
    rows = [json.loads(line) for line in (reference / "metrics.jsonl").read_text().splitlines()]
    assert [r["frames"] for r in rows] == [300, 600]
    for key in ("episodes", "eval_return_mean", "eval_return_median", "loss", "frames_per_second"):
        assert rows[-1][key] is not None, key
    summary = json.loads((reference / "summary.json").read_text())
    assert summary["frames"] == 600 and summary["updates"] == (600 - 100) // 2 + 1
    assert summary["random_return_mean"] is not None
    info = json.loads((reference / "model.json").read_text())
    assert info["task"]["name"] == "dqn" and info["data_meta"]["env"] == "breakout"


def test_resume_from_an_earlier_checkpoint_is_exact(reference: Path, tmp_path: Path):
    # The newest checkpoints lost: resuming from frame 300 must give the same agent as never stopping.
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    for p in (run / "checkpoints").iterdir():
        shutil.rmtree(p)
    assert main(_args(tmp_path / "half", ["task.frames=300"])) == 0
    shutil.copytree(tmp_path / "half" / "checkpoints", run / "checkpoints", dirs_exist_ok=True)
    assert main(["train", "--resume", str(run), "--quiet", "--set", "task.frames=600"]) == 0
    assert _same(_weights(run), _weights(reference))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    ref_rows = [json.loads(line) for line in (reference / "metrics.jsonl").read_text().splitlines()]
    strip = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "frames_per_second")}  # noqa: E731
    assert [strip(r) for r in rows] == [strip(r) for r in ref_rows]


def _spawn(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    return subprocess.Popen([sys.executable, "-m", "cnnkit", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.time() + timeout
    while not path.exists() and proc.poll() is None and time.time() < end:
        time.sleep(0.05)


@pytest.mark.slow  # two cnnkit processes: ~10 s on an idle 2-core machine, several times that under load
def test_kill_9_then_resume_gives_the_same_agent(reference: Path, tmp_path: Path):
    run = tmp_path / "killed"
    proc = _spawn(_args(run))
    _wait_for(run / "checkpoints" / "step-200", proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert _same(_weights(run), _weights(reference))


@pytest.mark.slow
def test_sigterm_checkpoints_and_exits_75(tmp_path: Path):
    run = tmp_path / "term"
    proc = _spawn(_args(run, ["task.frames=100000", "task.eval_every=100000"]))
    _wait_for(run / "checkpoints" / "step-200", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err.decode()
    assert "resume with cnnkit train --resume" in err.decode()
    assert len(list((run / "checkpoints").glob("step-*"))) >= 1


def test_resume_without_the_replay_memory_warms_up(reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    run = tmp_path / "noreplay"
    assert main(_args(run, ["task.frames=300", "task.save_replay=false"])) == 0
    assert main(["train", "--resume", str(run), "--set", "task.frames=600"]) == 0
    out = capsys.readouterr().out
    assert "holds no replay memory: refilling it with 100 frames" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["frames"] == 600 and summary["updates"] < json.loads((reference / "summary.json").read_text())["updates"]


def test_resume_refuses_a_changed_algorithm_setting(reference: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["train", "--resume", str(reference), "--set", "task.gamma=0.5"]) == 2
    assert "task.gamma cannot change on resume" in capsys.readouterr().err


def test_bad_names_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(_args(tmp_path / "a", ["env.name=breakot"])) == 2
    err = capsys.readouterr().err
    assert "unknown environment 'breakot'; did you mean 'breakout'?" in err and "Traceback" not in err
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a" / "checkpoints").glob("*"))
    assert main(_args(tmp_path / "b", ["model.name=lenet5"])) == 2
    assert "not a Q-network" in capsys.readouterr().err
    assert main(_args(tmp_path / "c", ["task.replay_size=100000000000"])) == 2
    assert "lower task.replay_size" in capsys.readouterr().err


def test_play_writes_a_gif(reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    gif = tmp_path / "ep.gif"
    assert main(["play", str(reference), "--episodes", "2", "--gif", str(gif), "--epsilon", "0"]) == 0
    assert "2 episodes of breakout: mean return" in capsys.readouterr().out
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames > 1 and im.size == (160, 160)


def test_evaluate_points_to_play(reference: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["evaluate", str(reference)]) == 2
    assert "is a dqn run, which has no dataset; measure it with cnnkit play" in capsys.readouterr().err


def test_env_name_chooses_the_game_and_task_env_is_an_alias(tmp_path: Path):
    from cnnkit.config import load_config

    assert load_config(RECIPE, ["env.name=Asterix"]).env.name == "asterix"
    old = load_config(None, ["task.name=dqn", "task.env=seaquest", "task.sticky_actions=0.0"])  # first-pass run folders
    assert old.env.name == "seaquest" and old.env.sticky_actions == 0.0 and "env" not in old.task.kwargs()
    from cnnkit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"config key env.name: unknown environment 'breakot'; did you mean 'breakout'\?"):
        load_config(RECIPE, ["env.name=breakot"])
    with pytest.raises(ConfigError, match=r"task.env: moved to env.name, which says 'breakout'"):
        load_config(RECIPE, ["task.env=asterix"])


@pytest.fixture(scope="module")
def vector_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dqn") / "vec"
    assert main(_args(out, ["env.num_envs=3"])) == 0
    return out


def test_vector_of_environments_counts_every_copys_frames(vector_reference: Path):
    rows = [json.loads(line) for line in (vector_reference / "metrics.jsonl").read_text().splitlines()]
    assert [r["frames"] for r in rows] == [300, 600]  # 3 divides both
    summary = json.loads((vector_reference / "summary.json").read_text())
    assert summary["num_envs"] == 3 and summary["updates"] == (600 - 100) // 2 + 1
    # three copies of one seed would play the same games: the copies are seeded apart
    from cnnkit.rl.vector import VectorEnv

    envs = VectorEnv("asterix", num_envs=3, seed=0)
    obs = envs.reset_all()
    trajectories = []
    for i in range(3):
        trajectories.append([envs.step_one(i, 0)[0].tobytes() for t in range(30)])
    assert len({tuple(t) for t in trajectories}) == 3 and obs.shape == (3, 4, 10, 10)


def test_vector_resume_from_an_earlier_checkpoint_is_exact(vector_reference: Path, tmp_path: Path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(vector_reference, run)
    shutil.rmtree(run / "checkpoints")
    assert main(_args(tmp_path / "half", ["env.num_envs=3", "task.frames=300"])) == 0
    shutil.copytree(tmp_path / "half" / "checkpoints", run / "checkpoints")
    assert main(["train", "--resume", str(run), "--quiet", "--set", "task.frames=600"]) == 0
    assert _same(_weights(run), _weights(vector_reference))


def test_resume_refuses_another_number_of_environments(vector_reference: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["train", "--resume", str(vector_reference), "--set", "env.num_envs=2"]) == 2
    assert "env.num_envs cannot change on resume" in capsys.readouterr().err


def test_refusals_come_before_the_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    # a memory too big for this machine: computed from the sizes, nothing allocated, no folder made
    assert main(_args(tmp_path / "big", ["task.replay_size=100000000000"])) == 2
    err = capsys.readouterr().err
    assert "replay memory of 100,000,000,000 transitions of shape (4, 10, 10) needs" in err and "lower task.replay_size" in err
    assert not (tmp_path / "big").exists()
    # a missing optional package: one line naming it
    monkeypatch.setitem(sys.modules, "minatar", None)  # import minatar now raises ImportError
    assert main(_args(tmp_path / "nopkg")) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].endswith("needs the 'minatar' package: pip install minatar (or pip install -e \".[rl]\")")
    assert "Traceback" not in err and not (tmp_path / "nopkg").exists()
    assert main(_args(tmp_path / "noenv", ["env.name=null"])) == 2
    assert "task dqn needs an environment: --set env.name=breakout" in capsys.readouterr().err


def test_torchrun_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    # What torchrun sets: two ranks would write one run folder; refused before the folder is made.
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(_args(tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert "runs in one process: start it without torchrun" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
