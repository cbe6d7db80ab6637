"""task: gan: the manual step against a hand-written DCGAN loop, and the command line end to end (sample
grids, FID floor/ceiling, exact resume, generate, one-line errors)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from cnnkit.cli import main
from cnnkit.models.dcgan import dcgan
from cnnkit.tasks import create_task


class _Stepper:
    """What the trainer hands a manual task: backward, step the named optimizer, zero its gradients."""

    def __init__(self, modules: dict[str, torch.nn.Module]) -> None:
        self.modules, self.names = modules, []
        self.optimizers = {k: _adam(m) for k, m in modules.items()}

    def step(self, name: str, loss: torch.Tensor) -> None:
        self.names.append(name)
        loss.backward()
        self.optimizers[name].step()
        self.optimizers[name].zero_grad(set_to_none=True)

    def module(self, name: str) -> torch.nn.Module:
        return self.modules[name]


def _adam(module: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(module.parameters(), lr=2e-4, betas=(0.5, 0.999))


def test_manual_step_equals_a_hand_written_alternating_loop():
    torch.manual_seed(0)
    gan = dcgan(image_size=8, base_width=4, fid_width=4, num_classes=3)
    ref = copy.deepcopy(gan)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 3, (16,))
    task = create_task("gan")
    stepper = _Stepper(task.optimizer_groups(gan))
    opt_d, opt_g, opt_c = _adam(ref.discriminator), _adam(ref.generator), _adam(ref.fid_net)
    for i in range(3):
        torch.manual_seed(100 + i)
        out = task.manual_train_step(gan, x, y, stepper)
        torch.manual_seed(100 + i)  # the same z
        z = torch.randn(16, 100, 1, 1)
        fake = ref.generator(z)
        real = x * 2 - 1
        opt_d.zero_grad()
        bce = F.binary_cross_entropy_with_logits
        d_real, d_fake = ref.discriminator(real), ref.discriminator(fake.detach())
        loss_d = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        d_gen = ref.discriminator(fake)
        loss_g = bce(d_gen, torch.ones_like(d_gen))
        loss_g.backward()
        opt_g.step()
        opt_c.zero_grad()
        F.cross_entropy(ref.fid_net(x), y).backward()
        opt_c.step()
        torch.testing.assert_close(out.outputs[:2], torch.stack([loss_d, loss_g]).detach(), rtol=1e-6, atol=1e-6)
    assert stepper.names == ["discriminator", "generator", "fid_net"] * 3
    for (k, a), b in zip(gan.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=k)


SMALL = ["--set", "task=gan", "--set", "model.name=dcgan", "--set", "model.image_size=8", "--set", "model.base_width=8",
         "--set", "model.fid_width=8", "--set", "data.normalize=false", "--set", "data.limit_train=256",
         "--set", "data.limit_test=128", "--set", "data.batch_size=32", "--set", "train.threads=1",
         "--set", "optim.name=adam", "--set", "optim.lr=2e-4", "--set", "optim.betas=[0.5,0.999]", "--set", "schedule.name=none"]


def _train(out: Path, *extra: str, capsys=None) -> int:
    code = main(["train", *SMALL, *extra, "--out", str(out), "--quiet"])
    return code


def test_gan_trains_resumes_exactly_and_generates(tmp_path: Path, capsys):
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert _train(full, "--set", "train.epochs=2") == 0
    out = capsys.readouterr().out
    assert "test FID:" in out and "untrained generator" in out
    s = json.loads((full / "summary.json").read_text())
    assert s["task"] == "gan" and "Inception" in s["test_fid_features"]
    assert s["test_fid_real"] < s["test_fid"] and s["test_fid_real"] < s["test_fid_untrained"]
    assert s["test_checkerboard"] > 0 and 0 <= s["test_fid_net_accuracy"] <= 1
    # The key: fid, with the feature network it was computed on, its floor and its ceiling.
    assert s["fid"] == s["test_fid"] and s["fid_network"] == "fid_net" and "Inception" in s["fid_features"]
    assert (s["fid_floor"], s["fid_ceiling"]) == (s["test_fid_real"], s["test_fid_untrained"])
    assert (full / "plots" / "samples-epoch-001.png").is_file() and (full / "plots" / "samples-epoch-002.png").is_file()
    # Exact resume: one epoch, then --resume to two; the weights and the training rows match.
    assert _train(cut, "--set", "train.epochs=1") == 0
    assert main(["train", "--resume", str(cut), "--set", "train.epochs=2", "--quiet"]) == 0
    a, b = load_file(full / "model.safetensors"), load_file(cut / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = [[{k: v for k, v in json.loads(line).items() if "second" not in k} for line in (d / "metrics.jsonl").read_text().splitlines()]
            for d in (full, cut)]
    assert rows[0] == rows[1]
    capsys.readouterr()
    # cnnkit generate: a PNG grid and a .npy array, the same images for the same seed.
    assert main(["generate", str(full), "--n", "16", "--seed", "3", "--out", str(tmp_path / "grid.png")]) == 0
    assert main(["generate", str(full), "--n", "16", "--seed", "3", "--out", str(tmp_path / "a.npy")]) == 0
    assert main(["generate", str(full), "--n", "16", "--seed", "3", "--out", str(tmp_path / "b.npy")]) == 0
    x = np.load(tmp_path / "a.npy", allow_pickle=False)
    assert x.shape == (16, 1, 8, 8) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert np.array_equal(x, np.load(tmp_path / "b.npy", allow_pickle=False))
    from PIL import Image

    with Image.open(tmp_path / "grid.png") as grid:
        assert grid.size == (4 * 10 + 2, 4 * 10 + 2)
    assert main(["generate", str(full), "--out", str(tmp_path / "grid.jpg")]) == 2
    assert "expected a .png or .npy" in capsys.readouterr().err
    assert main(["evaluate", str(full)]) == 2
    assert "its test metrics are in its summary.json" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.zeros((8, 8), np.float32))
    assert main(["predict", str(full), str(tmp_path / "x.npy")]) == 2
    assert "cnnkit predict works on classifiers" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "model.image_size=30"], "cannot make 30x30 images"),
        (["--set", "data.normalize=true"], "set data.normalize: false"),
        (["--set", "model.image_size=16"], "the generator makes (1, 16, 16)"),
    ],
)
def test_bad_input_is_one_line_with_exit_2(tmp_path: Path, capsys, extra, message):
    args = ["train", *SMALL, "--set", "train.epochs=1", *extra, "--out", str(tmp_path / "run"), "--quiet"]
    if extra[1] == "model.image_size=16":
        args += ["--set", "data.input_size=[8,8]"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_generate_refuses_a_run_without_a_generator(tmp_path: Path, capsys):
    run = tmp_path / "clf"
    assert main(["train", "--set", "train.epochs=1", "--set", "data.limit_train=64", "--set", "train.threads=1",
                 "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["generate", str(run), "--out", str(tmp_path / "g.png")]) == 2
    assert "needs a run of task gan" in capsys.readouterr().err
