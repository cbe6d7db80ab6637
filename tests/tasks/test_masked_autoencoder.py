"""task: masked_autoencoder: the masked-patch loss against a hand computation, and the task end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cnnkit.cli import main
from cnnkit.errors import DataError
from cnnkit.tasks import create_task
from cnnkit.tasks.masked_autoencoder import MaskedAutoencoder, masked_patch_loss, patch_targets


def test_loss_counts_masked_patches_only_against_a_loop():
    torch.manual_seed(0)
    x, recon = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]], [[[0.0, 0.0], [1.0, 0.0]]]])
    for norm in (False, True):
        total, n = 0.0, 0
        for b in range(2):
            for i in range(2):
                for j in range(2):
                    if mask[b, 0, i, j]:
                        t = x[b, :, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4].flatten()
                        if norm:
                            t = (t - t.mean()) / (t.var(unbiased=True) + 1e-6).sqrt()
                        p = recon[b, :, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4].flatten()
                        total += float((p - t).square().mean())
                        n += 1
        got = float(masked_patch_loss(recon, x, mask, norm_pix_loss=norm))
        assert got == pytest.approx(total / n, rel=1e-5)
        changed = recon.clone()
        changed[0, :, :4, 4:] += 10  # a visible patch
        assert float(masked_patch_loss(changed, x, mask, norm_pix_loss=norm)) == pytest.approx(got, rel=1e-6)


def test_normalised_targets_have_zero_mean_and_unit_variance_per_patch():
    t = patch_targets(torch.rand(3, 2, 8, 8) * 7 + 2, 4, norm_pix_loss=True)
    assert t.shape == (3, 32, 2, 2)
    torch.testing.assert_close(t.mean(1), torch.zeros(3, 2, 2), atol=1e-5, rtol=0)
    torch.testing.assert_close(t.var(1), torch.ones(3, 2, 2), atol=1e-4, rtol=0)


def test_task_is_registered_and_rejects_a_classifier():
    task = create_task("masked_autoencoder", norm_pix_loss=False)
    assert isinstance(task, MaskedAutoencoder) and not task.norm_pix_loss
    with pytest.raises(DataError, match="returns \\(reconstruction, mask\\)"):
        task.train_step(lambda x: x.mean((2, 3)), torch.zeros(2, 1, 4, 4), torch.zeros(2))


ONE = ["--set", "train.threads=1", "--set", "data.limit_test=64", "--set", "optim.name=adamw", "--set", "optim.lr=0.003"]


def test_pretrain_then_fine_tune_from_the_command_line(tmp_path: Path, capsys):
    pre = tmp_path / "pre"
    code = main([
        "train", "--set", "task=masked_autoencoder", "--set", "model.name=fcmae", "--set", "model.input_size=[8,8]",
        "--set", "train.epochs=3", "--set", "data.limit_train=512", *ONE, "--out", str(pre), "--quiet",
    ])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "test reconstruction loss (masked patches):" in out.out
    summary = json.loads((pre / "summary.json").read_text())
    assert summary["task"] == "masked_autoencoder" and summary["test_accuracy"] is None
    # Predicting 0 for every normalised patch costs (n - 1) / n = 15/16 (unbiased variance of 16 values).
    assert summary["test_reconstruction_loss"] == summary["test_loss"] < 0.85
    from cnnkit.runs import load_model

    assert type(load_model(pre).model).__name__ == "FCMAE"  # the run folder rebuilds (its num_classes is ignored)
    assert (pre / "plots" / "reconstructions.png").is_file()
    ft = tmp_path / "ft"
    code = main([
        "train", "--set", "model.name=convnextv2_fmnist", "--set", "data.input_size=[8,8]", "--set", "train.epochs=1",
        "--set", "data.limit_train=64", *ONE, "--init-from", str(pre), "--out", str(ft),
    ])
    out = capsys.readouterr()
    assert code == 0, out.err
    from cnnkit.models import create_model

    encoder = [k for k in create_model("convnextv2_fmnist").state_dict() if k.startswith("features.")]
    assert f"{len(encoder)} tensors matched" in out.out + out.err  # every encoder tensor, none of the head
    assert 0.0 <= json.loads((ft / "summary.json").read_text())["test_accuracy"] <= 1.0
