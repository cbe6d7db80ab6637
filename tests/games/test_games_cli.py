"""``cnnkit train`` / ``cnnkit play`` for the game tasks on tic-tac-toe: run folders, exact resume, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cnnkit.cli import main

pytest.importorskip("pyspiel")

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
AZ = ["task.iterations=2", "task.games_per_iteration=2", "task.simulations=4", "task.steps_per_iteration=5",
      "task.eval_games=2", "train.threads=1"]


def _train(config: str, out: Path, extra: list[str]) -> int:
    args = ["train", str(CONFIGS / config), "--out", str(out), "--quiet"]
    for s in extra:
        args += ["--set", s]
    return main(args)


@pytest.fixture(scope="module")
def az_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("az") / "run"
    assert _train("alphazero-tictactoe.yaml", out, AZ) == 0
    return out


def test_alphazero_run_folder(az_run: Path):
    for name in ("metrics.jsonl", "summary.json", "model.json", "model.safetensors", "plots/self_play.png"):
        assert (az_run / name).is_file(), name
    rows = [json.loads(line) for line in (az_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2]
    assert 0 <= rows[-1]["win_rate_vs_random_low"] <= rows[-1]["win_rate_vs_random"] <= rows[-1]["win_rate_vs_random_high"] <= 1


def test_alphazero_resume_is_exact(az_run: Path, tmp_path: Path):
    run = tmp_path / "half"
    assert _train("alphazero-tictactoe.yaml", run, [*AZ, "task.iterations=1"]) == 0
    assert main(["train", "--resume", str(run), "--quiet", "--set", "task.iterations=2"]) == 0
    a, b = load_file(str(run / "model.safetensors")), load_file(str(az_run / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_play_against_random_and_mcts(az_run: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["play", str(az_run), "--episodes", "2", "--against", "random"]) == 0
    assert "2 games against random" in capsys.readouterr().out
    assert main(["play", str(az_run), "--episodes", "1", "--against", "mcts:5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["games"] == 1
    assert main(["play", str(az_run), "--against", "mcts:x"]) == 2
    assert "expected random, mcts:N" in capsys.readouterr().err


def test_human_illegal_move_is_one_line_and_a_reprompt(az_run: Path):
    from cnnkit.rl.play import play_run

    typed = iter(["9", "banana"] + [str(a) for a in range(9)] * 3)
    said: list[str] = []
    result = play_run(az_run, episodes=2, against="human", input_fn=lambda prompt: next(typed), output_fn=said.append)
    assert result["games"] == 2
    illegal = [s for s in said if s.startswith("illegal move")]
    assert illegal[0].startswith("illegal move '9': legal moves are") and any("'banana'" in s for s in illegal)


def test_human_go_moves_without_the_player_prefix():
    from cnnkit.games.agents import human_agent

    pyspiel = pytest.importorskip("pyspiel")
    state = pyspiel.load_game("go(board_size=9)").new_initial_state()
    said: list[str] = []
    typed = iter(["z9", "C3"])
    act = human_agent(lambda prompt: next(typed), said.append)
    assert state.action_to_string(0, act(state)) == "B c3"
    illegal = [s for s in said if s.startswith("illegal move")]
    assert len(illegal) == 1 and illegal[0].endswith("... (82 legal moves)")  # the list is cut, with the count
    typed = iter(["pass"])
    assert state.action_to_string(0, act(state)) == "B PASS"


def test_blondie24_evolves_and_plays(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    run = tmp_path / "b24"
    extra = ["task.game=tic_tac_toe", "task.population=2", "task.generations=1", "task.games_per_individual=1",
             "task.eval_games=2", "task.depth=1"]
    assert _train("blondie24-checkers.yaml", run, extra) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["generation"] == 1 and rows[0]["mean_sigma"] != 0.05  # the step sizes adapted
    assert main(["play", str(run), "--episodes", "2"]) == 0


def test_move_prediction_from_action_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    games = tmp_path / "games.txt"
    games.write_text("4 0 8 2 1 7 6 3 5\n0 4 8 2 6 3 5 1 7\n4 0 8 2 1 7 6 3 5\n4 0 8 2 1 7 6 3 5\n")
    cfg = tmp_path / "mp.yaml"
    task = f"task: {{name: move-prediction, game: tic_tac_toe, games: {games}, epochs: 2, batch_size: 8, test_fraction: 0.25}}\n"
    cfg.write_text(task + "model: {name: alphazero_resnet, width: 8, blocks: 1}\noptim: {name: adam, lr: 0.01}\n")
    assert main(["train", str(cfg), "--out", str(tmp_path / "run")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert 0 <= summary["test_move_accuracy"] <= 1 and summary["test_positions"] > 0
    games.write_text("4 4\n")
    assert main(["train", str(cfg), "--out", str(tmp_path / "bad")]) == 2
    assert "game 1, move 2: action 4 is not legal" in capsys.readouterr().err


def test_bad_game_names_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert _train("alphazero-tictactoe.yaml", tmp_path / "x", [*AZ, "task.game=tic_tac_tow"]) == 2
    err = capsys.readouterr().err
    assert "unknown game 'tic_tac_tow'; did you mean 'tic_tac_toe'" in err and "Traceback" not in err
    assert _train("alphazero-tictactoe.yaml", tmp_path / "y", [*AZ, "model.name=blondie24"]) == 2
    assert "use model.name=alphazero_resnet" in capsys.readouterr().err
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_move_prediction_from_sgf_go(tmp_path: Path):
    sgf = tmp_path / "games.sgf"
    sgf.write_text("(;GM[1]SZ[9];B[ee];W[cc];B[gc];W[cg];B[])\n(;GM[1]SZ[9];B[ee];W[gg];B[cc])\n(;GM[1]SZ[9];B[dd];W[ff])\n")
    cfg = tmp_path / "go.yaml"
    cfg.write_text(f"task: {{name: move-prediction, game: 'go(board_size=9)', games: {sgf}, epochs: 1, test_fraction: 0.34}}\n"
                   "model: {name: alphazero_resnet, width: 8, blocks: 1}\n")
    assert main(["train", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["train_positions"] + summary["test_positions"] == 10
