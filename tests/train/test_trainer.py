"""The loop: regularizers, NaN policy, early stopping, hooks (aux heads, init_from_data), TTA, EMA."""

import math

import pytest
import torch
from torch import nn

from cnnkit.data import InMemoryLoader
from cnnkit.errors import CnnkitError
from cnnkit.train import Trainer, TrainingError, read_checkpoint
from cnnkit.train.checkpoint import list_checkpoints

from .train_helpers import TinyNet, base_cfg, loaders, read_rows


def linear_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    net.input_shape = (1, 8, 8)
    return net


def one_batch_loader(n: int = 16) -> InMemoryLoader:
    from .train_helpers import synthetic

    x, y = synthetic(n)
    return InMemoryLoader(x, y, batch_size=n, shuffle=True, mean=[0.3], std=[0.25], seed=0)


def sgd_cfg(**train):
    return {"train": {"epochs": 1, "threads": 1, **train}, "optim": {"name": "sgd", "lr": 1.0, "momentum": 0.0}}


@pytest.mark.parametrize("l1,l2,which", [(0.01, 0.0, "weights"), (0.0, 0.1, "weights"), (0.02, 0.05, "all")])
def test_penalty_changes_the_gradient_by_the_analytic_amount(l1, l2, which):
    # One SGD step with lr 1: w1 = w0 - grad. The penalty must add l1 * sign(w) + l2 * w to the gradient
    # of the penalized tensors (weights only, or biases too with params: all) and nothing else.
    plain = linear_net()
    Trainer(plain, train_loader=one_batch_loader(), cfg=sgd_cfg(), quiet=True).fit()
    pen = linear_net()
    w0 = {k: v.clone() for k, v in pen.state_dict().items()}
    cfg = sgd_cfg(penalty={"l1": l1, "l2": l2, "params": which})
    Trainer(pen, train_loader=one_batch_loader(), cfg=cfg, quiet=True).fit()
    for name in ("1.weight", "1.bias"):
        w = w0[name]
        expected = l1 * torch.sign(w) + l2 * w if (name.endswith("weight") or which == "all") else torch.zeros_like(w)
        got = plain.state_dict()[name] - pen.state_dict()[name]  # = extra gradient
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_max_norm_holds_after_every_step():
    c = 0.3
    seen = []

    def check(t: Trainer) -> None:
        for m in t.raw_model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                norms = m.weight.detach().flatten(1).norm(dim=1)
                seen.append(float(norms.max()))
                assert (norms <= c + 1e-6).all(), (t.global_step, norms)

    torch.manual_seed(0)
    Trainer(TinyNet(), cfg={"train": {"epochs": 2, "max_norm": c, "threads": 1}, "optim": {"lr": 0.5}},
            quiet=True, on_step_end=check, **loaders(val=False)).fit()
    assert len(seen) == 2 * 12 and max(seen) > 0.9 * c  # the constraint was active

    # Without the constraint the same run leaves the ball, so the check above is not vacuous.
    torch.manual_seed(0)
    free = TinyNet()
    Trainer(free, cfg={"train": {"epochs": 2, "threads": 1}, "optim": {"lr": 0.5}}, quiet=True, **loaders(val=False)).fit()
    assert free.fc.weight.norm(dim=1).max() > c


class NaNAt(nn.Module):
    """TinyNet whose training forward returns NaN at call number ``at`` (counting from 1)."""

    input_shape = (1, 8, 8)

    def __init__(self, at: int) -> None:
        super().__init__()
        self.net = TinyNet()
        self.at, self.calls = at, 0

    def forward(self, x):
        out = self.net(x)
        if self.training:
            self.calls += 1
            if self.calls == self.at:
                return out * float("nan")
        return out


def test_nan_stop_raises_and_keeps_last_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = NaNAt(at=9)  # epoch 2, step 3 (6 steps per epoch), after the step-8 checkpoint
    cfg = base_cfg(epochs=3)
    with pytest.raises(TrainingError, match=r"non-finite loss \(nan\) at epoch 2 step 3.*checkpoint.*intact") as info:
        Trainer(model, cfg=cfg, run_dir=tmp_path, quiet=True, **loaders()).fit()
    assert isinstance(info.value, CnnkitError) and "\n" not in str(info.value)
    newest = list_checkpoints(tmp_path / "checkpoints")[0]
    ck = read_checkpoint(newest)
    assert ck.meta["global_step"] == 8
    assert all(torch.isfinite(v).all() for k, v in ck.tensors.items() if k.startswith("model/"))


@pytest.mark.parametrize("run_dir", [True, False])
def test_nan_before_the_first_checkpoint_claims_no_checkpoint(tmp_path, run_dir):
    torch.manual_seed(0)
    model = NaNAt(at=2)  # step 2; the first checkpoint would come at step 2's end (every_steps=2)
    with pytest.raises(TrainingError, match=r"non-finite loss \(nan\) at epoch 1 step 2") as info:
        Trainer(model, cfg=base_cfg(epochs=3), run_dir=tmp_path if run_dir else None, quiet=True, **loaders()).fit()
    message = str(info.value)
    assert "intact" not in message and "checkpoint" not in message.replace("before its first checkpoint", "")
    assert ("before its first checkpoint" in message) == run_dir
    assert list_checkpoints(tmp_path / "checkpoints") == []


def test_nan_skip_skips_exactly_that_step():
    torch.manual_seed(0)
    model = NaNAt(at=4)
    t = Trainer(model, cfg=base_cfg(epochs=2, nan_policy="skip"), quiet=True, **loaders())
    summary = t.fit()
    assert summary["skipped_steps"] == 1 and summary["steps"] == 12
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert math.isfinite(summary["final_train_loss"]) and t.history[0]["skipped_steps"] == 1


def test_early_stopping_restores_best_weights(tmp_path):
    # Memorizing 12 randomly labelled images: validation loss falls briefly, then rises.
    from .train_helpers import synthetic

    x, _ = synthetic(12, seed=4)
    y = torch.tensor([0, 1, 2, 2, 1, 0, 1, 0, 2, 0, 2, 1])
    xv, yv = synthetic(48, seed=5)
    stats = dict(mean=[0.3], std=[0.25], seed=0)

    def make(epochs, es):
        torch.manual_seed(0)
        model = TinyNet(p=0.0)
        cfg = {"seed": 1, "train": {"epochs": epochs, "threads": 1, "deterministic": True, "early_stopping": es},
               "optim": {"name": "adam", "lr": 0.05}}
        t = Trainer(model, cfg=cfg, quiet=True,
                    train_loader=InMemoryLoader(x, y, batch_size=4, shuffle=True, **stats),
                    val_loader=InMemoryLoader(xv, yv, batch_size=48, **stats))
        return t, t.fit()

    t, summary = make(40, {"monitor": "val_loss", "mode": "min", "patience": 3})
    losses = [r["val_loss"] for r in t.history]
    best = summary["best_epoch"]
    assert summary["stopped_early"] and len(losses) == best + 3 < 40
    assert losses[best - 1] == min(losses)
    t2, _ = make(best, None)  # the same run stopped by hand at the best epoch
    for k, v in t2.raw_model.state_dict().items():
        assert torch.equal(t.raw_model.state_dict()[k], v), k


def test_early_stopping_on_unknown_metric_is_a_clear_error():
    torch.manual_seed(0)
    cfg = base_cfg(epochs=1, early_stopping={"monitor": "val_acc"})
    with pytest.raises(CnnkitError, match="val_acc.*not a metric.*val_accuracy"):
        Trainer(TinyNet(), cfg=cfg, quiet=True, **loaders())  # caught before any training
    cfg = base_cfg(epochs=1, early_stopping={"monitor": "val_loss"})
    with pytest.raises(CnnkitError, match="need a validation set"):
        Trainer(TinyNet(), cfg=cfg, quiet=True, **loaders(val=False))


class AuxNet(nn.Module):
    """Returns (main, aux) in training mode, like GoogLeNet."""

    input_shape = (1, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        self.main, self.aux = nn.Linear(64, 3), nn.Linear(64, 3)
        self.last = None

    def forward(self, x):
        x = x.flatten(1)
        if self.training:
            out = (self.main(x), self.aux(x))
            self.last = out
            return out
        return self.main(x)


def test_aux_heads_weighted_0_3():
    torch.manual_seed(0)
    net = AuxNet()
    t = Trainer(net, train_loader=one_batch_loader(), cfg=sgd_cfg(), quiet=True)
    x, y = next(iter(one_batch_loader().epoch_batches(0)))
    main, aux = net(x)
    expected = nn.functional.cross_entropy(main, y) + 0.3 * nn.functional.cross_entropy(aux, y)
    step = t.task.train_step(lambda _: (main, aux), x, y)
    torch.testing.assert_close(step.loss, expected)
    assert step.outputs is main
    w_aux = net.aux.weight.clone()
    t.fit()
    assert not torch.equal(w_aux, net.aux.weight)  # the aux head was trained too


def test_init_from_data_called_once_with_training_images():
    class Hooked(TinyNet):
        def init_from_data(self, images):
            self.got = getattr(self, "got", []) + [images.shape]

    torch.manual_seed(0)
    net = Hooked()
    Trainer(net, cfg=base_cfg(epochs=2), quiet=True, **loaders(n=96)).fit()
    assert net.got == [torch.Size([96, 1, 8, 8])]


def test_init_from_data_weights_reach_the_ema_copy():
    class Whitened(TinyNet):
        def __init__(self):
            super().__init__()
            self.conv.weight.requires_grad_(False)  # a frozen, data-initialized stem

        def init_from_data(self, images):
            with torch.no_grad():
                self.conv.weight.fill_(float(images.std()))

    torch.manual_seed(0)
    net = Whitened()
    t = Trainer(net, cfg=base_cfg(epochs=1, ema={"decay": 0.99}), quiet=True, **loaders())
    t.fit()
    assert torch.equal(t.ema.module.conv.weight, net.conv.weight)


def test_tta_flip_averages_mirrored_logits():
    torch.manual_seed(0)
    net = linear_net()
    loader = one_batch_loader()
    t = Trainer(net, train_loader=loader, cfg=sgd_cfg(tta="flip"), quiet=True)
    x, y = next(iter(loader.epoch_batches(0)))
    with torch.no_grad():
        logits = (net(x) + net(x.flip(-1))) / 2
    expected = (logits.argmax(1) == y).float().mean().item()
    assert t.evaluate(loader)["accuracy"] == pytest.approx(expected)
    assert t.evaluate(loader, tta="shift")["count"] == 16


def test_ema_weights_are_evaluated_and_differ_from_raw(tmp_path):
    torch.manual_seed(0)
    t = Trainer(TinyNet(), cfg=base_cfg(epochs=2, ema={"decay": 0.5}), quiet=True, **loaders())
    summary = t.fit()
    assert summary["ema"] is True and t.eval_model is t.ema.module
    assert not torch.equal(t.ema.module.fc.weight, t.raw_model.fc.weight)
    assert summary["test_accuracy"] == t.evaluate(t.test_loader, model=t.ema.module)["accuracy"]


def test_run_dir_outputs(tmp_path):
    torch.manual_seed(0)
    Trainer(TinyNet(), cfg=base_cfg(epochs=2), run_dir=tmp_path, quiet=True, **loaders()).fit()
    rows = read_rows(tmp_path)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds", "images_per_second"} <= set(rows[0])
    assert (tmp_path / "summary.json").is_file() and (tmp_path / "plots" / "learning_curves.png").stat().st_size > 1000
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["best", "step-000000010", "step-000000012"]  # keep_last 2 (every 2 steps + epoch ends)


def test_plain_progress_one_line_per_epoch(capsys):
    torch.manual_seed(0)
    Trainer(TinyNet(), cfg=base_cfg(epochs=2), **loaders()).fit()
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("epoch ")]
    assert len(lines) == 2 and "val_acc" in lines[0] and "img/s" in lines[0]


def test_fp16_on_cpu_is_rejected():
    with pytest.raises(CnnkitError, match="fp16 needs a CUDA"):
        Trainer(TinyNet(), cfg=base_cfg(precision="fp16"), quiet=True, **loaders())


def test_bf16_channels_last_trains():
    torch.manual_seed(0)
    t = Trainer(TinyNet(), cfg=base_cfg(epochs=3, precision="bf16", channels_last=True, deterministic=False),
                quiet=True, **loaders())
    s = t.fit()
    assert s["final_train_accuracy"] > 0.5 and t.raw_model.conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_rich_progress_bar_runs():
    from cnnkit.train.progress import Progress

    torch.manual_seed(0)
    p = Progress(enabled=True, live=True)
    p._last = -1.0
    t = Trainer(TinyNet(), cfg=base_cfg(epochs=1), progress=p, **loaders())
    t.fit()
    assert p._bar is None  # closed at the end


def test_progress_bar_is_erased_when_training_ends():
    import io

    from cnnkit.train.progress import Progress

    stream = io.StringIO()
    p = Progress(enabled=True, live=True, stream=stream)
    p._last = -1.0
    torch.manual_seed(0)
    Trainer(TinyNet(), cfg=base_cfg(epochs=2), progress=p, **loaders()).fit()
    out = stream.getvalue()
    assert "epoch 2/2" in out and "━" in out  # the bar was drawn on our stream, with the epoch lines
    assert out.endswith("\x1b[2K")  # and the last thing written erases it


def test_early_stopped_run_does_not_train_on_when_resumed(tmp_path):
    torch.manual_seed(0)
    cfg = base_cfg(epochs=30, early_stopping={"monitor": "val_accuracy", "patience": 1, "min_delta": 0.5})
    t = Trainer(TinyNet(), cfg=cfg, run_dir=tmp_path, quiet=True, **loaders())
    s = t.fit()
    assert s["stopped_early"] and s["epochs"] == 2
    torch.manual_seed(0)
    t2 = Trainer(TinyNet(), cfg=cfg, run_dir=tmp_path, quiet=True, **loaders())
    s2 = t2.fit(resume=True)
    assert s2["epochs"] == 2 and s2["steps"] == s["steps"] and s2["test_accuracy"] == s["test_accuracy"]


def test_plain_torch_dataloader_works_as_a_loader():
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 1, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long()
    dl = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=False)
    torch.manual_seed(0)
    t = Trainer(TinyNet(num_classes=2), train_loader=dl, test_loader=dl, cfg=base_cfg(epochs=3), quiet=True)
    s = t.fit()
    assert s["steps"] == 15 and s["test_count"] == 40


def test_tta_shift_hand_computed():
    from cnnkit.train.evaluation import tta_logits

    torch.manual_seed(0)
    net = linear_net()
    x = torch.randn(2, 1, 8, 8)
    flip = x.flip(-1)

    def shifted(img, dy, dx):  # reflect-pad by 1, crop at offset (dy, dx)
        pad = nn.functional.pad(img, (1, 1, 1, 1), mode="reflect")
        return pad[..., dy : dy + 8, dx : dx + 8]

    with torch.no_grad():
        pair = (net(x) + net(flip)) / 2
        shifts = sum(net(shifted(i, d, d)) for i in (x, flip) for d in (0, 2)) / 4
        expected = 0.5 * pair + 0.5 * shifts
        torch.testing.assert_close(tta_logits(net, x, "shift"), expected)
        torch.testing.assert_close(tta_logits(net, x, "flip"), pair)
        torch.testing.assert_close(tta_logits(net, x, "none"), net(x))


def test_device_and_threads():
    from cnnkit.runtime import physical_cores, resolve_device

    assert 1 <= physical_cores() <= (torch.get_num_threads() + 64)
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(CnnkitError, match="unknown device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(CnnkitError, match="no CUDA device"):
            resolve_device("cuda")


def test_training_leaves_the_callers_torch_settings_as_they_were():
    # A library must not leave process-wide state changed: threads and determinism come back after fit.
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    wanted_threads = 1 if before[0] != 1 else 2
    cfg = {"train": {"epochs": 1, "threads": wanted_threads, "deterministic": not before[1]}}
    seen = []
    t = Trainer(linear_net(), train_loader=one_batch_loader(), cfg=cfg, quiet=True,
                on_step_end=lambda tr: seen.append((torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())))
    t.fit()
    assert seen == [(wanted_threads, not before[1])]  # in force while training
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before
