"""The loop's callbacks: their documented order, a user callback's view of the run, skipping a step, and
tasks that step several optimizers themselves (manual optimization), exactly resumable."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch
from torch import Tensor, nn

from cnnkit.tasks import Classification, StepOutput
from cnnkit.train import Trainer
from cnnkit.train.callbacks import (
    BestWeights,
    Callback,
    Checkpointer,
    EMAUpdate,
    MaxNorm,
    MetricsLogger,
    ProgressBar,
    StepGuard,
    StepHook,
    TaskHooks,
    default_callbacks,
)

from .train_helpers import TinyNet, base_cfg, loaders, strip_timing


def test_the_default_order_is_the_documented_one() -> None:
    order = [type(cb) for cb in default_callbacks()]
    assert order == [StepGuard, MaxNorm, EMAUpdate, StepHook, ProgressBar, MetricsLogger, BestWeights, Checkpointer, TaskHooks]
    import cnnkit.train.callbacks as module

    doc = module.__doc__ or ""
    positions = [doc.index(f":class:`{cls.__name__}`") for cls in order]
    assert positions == sorted(positions)  # the docstring lists them in the order they run


class Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[tuple[str, int, int]] = []

    def on_fit_start(self, t: Any) -> None:
        self.events.append(("fit_start", t.loop.epoch, t.loop.step))

    def on_epoch_start(self, t: Any) -> None:
        self.events.append(("epoch_start", t.loop.epoch, t.loop.step))

    def on_optimizer_step(self, t: Any) -> None:
        self.events.append(("optimizer_step", t.loop.epoch, t.loop.step))

    def on_step_end(self, t: Any) -> None:
        self.events.append(("step_end", t.loop.epoch, t.loop.step))

    def on_epoch_end(self, t: Any, row: dict[str, Any]) -> None:
        assert row["epoch"] == t.loop.epoch + 1 and "train_loss" in row
        self.events.append(("epoch_end", t.loop.epoch, t.loop.step))

    def on_after_epoch(self, t: Any) -> None:
        self.events.append(("after_epoch", t.loop.epoch, t.loop.step))

    def on_fit_end(self, t: Any) -> None:
        self.events.append(("fit_end", t.loop.epoch, t.loop.step))


def test_hooks_run_in_sequence_with_the_position_they_document() -> None:
    rec = Recorder()
    data = loaders(n=32, batch_size=16, val=False)
    Trainer(TinyNet(), train_loader=data["train_loader"], cfg=base_cfg(epochs=2), quiet=True, callbacks=[rec]).fit()
    names = [e[0] for e in rec.events]
    assert names[0] == "fit_start" and names[-1] == "fit_end"
    epoch = ["epoch_start", "optimizer_step", "step_end", "optimizer_step", "step_end", "epoch_end", "after_epoch"]
    assert names[1:-1] == epoch * 2
    # step_end sees the step counted; epoch_end the epoch still running; after_epoch the next position.
    assert rec.events[3] == ("step_end", 0, 1) and rec.events[6] == ("epoch_end", 0, 2) and rec.events[7] == ("after_epoch", 1, 0)


class SkipOdd(Callback):
    def on_before_backward(self, t: Any, loss: Tensor) -> bool:
        return t.loop.step % 2 == 0


def test_a_callback_can_veto_a_step() -> None:
    data = loaders(n=64, batch_size=16, val=False)
    net = TinyNet()
    rec = Recorder()
    t = Trainer(net, train_loader=data["train_loader"], cfg=base_cfg(epochs=1), quiet=True, callbacks=[SkipOdd(), rec])
    t.fit()
    assert sum(e[0] == "optimizer_step" for e in rec.events) == 2  # steps 0 and 2 of 4
    assert t.loop.global_step == 4


def test_keywords_train_a_module_without_a_config() -> None:
    data = loaders(n=32, batch_size=16, val=False)
    t = Trainer(TinyNet(), train_loader=data["train_loader"], task="classification", optimizer="adamw", lr=3e-3, epochs=2, quiet=True)
    assert isinstance(t.optimizer, torch.optim.AdamW) and t.optimizer.param_groups[0]["lr"] == pytest.approx(3e-3)
    assert t.fit()["epochs"] == 2 and t.cfg.optim.name == "adamw"
    mine = torch.optim.SGD(TinyNet().parameters(), lr=0.1)
    assert Trainer(TinyNet(), train_loader=data["train_loader"], optimizer=mine, quiet=True).optimizer is mine


class TwoHeads(nn.Module):
    """Two independent linear classifiers on the same input, trained by two optimizers in turn."""

    input_shape = (1, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
        self.b = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))

    def forward(self, x: Tensor) -> Tensor:
        return (self.a(x) + self.b(x)) / 2


class Alternating(Classification):
    """A toy manual-optimization task: step `a` on its own loss, then `b` on its own (a GAN's shape)."""

    name: ClassVar[str] = "alternating-test"
    manual_optimization: ClassVar[bool] = True

    def optimizer_groups(self, model: nn.Module) -> dict[str, nn.Module]:
        return {"a": model.a, "b": model.b}  # type: ignore[dict-item]

    def manual_train_step(self, forward: Any, x: Tensor, y: Tensor, optimizers: Any) -> StepOutput:
        model = getattr(forward, "module", forward)
        loss_a = self.criterion(model.a(x), y)
        optimizers.step("a", loss_a)
        loss_b = self.criterion(model.b(x), y)
        optimizers.step("b", loss_b)
        return StepOutput((loss_a + loss_b).detach() / 2, forward(x).detach(), y)


def _alternating_reference(data: Any, epochs: int, lr: float) -> nn.Module:
    net = TwoHeads()
    opt_a = torch.optim.SGD(net.a.parameters(), lr=lr)
    opt_b = torch.optim.SGD(net.b.parameters(), lr=lr)
    ce = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        for x, y in data["train_loader"].epoch_batches(epoch):
            for head, opt in ((net.a, opt_a), (net.b, opt_b)):
                loss = ce(head(x), y)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
    return net


def test_manual_optimization_matches_a_hand_written_alternating_loop() -> None:
    data = loaders(n=48, batch_size=16, val=False)
    cfg = base_cfg(epochs=2) | {"optim": {"name": "sgd", "lr": 0.1, "momentum": 0.0}, "schedule": {"name": "none"}}
    t = Trainer(TwoHeads(), train_loader=data["train_loader"], cfg=cfg, task=Alternating(), quiet=True)
    assert set(t.optimizers) == {"a", "b"}
    t.fit()
    ref = _alternating_reference(data, epochs=2, lr=0.1)
    for p, q in zip(t.raw_model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)


def test_manual_optimization_resumes_exactly(tmp_path: Any) -> None:
    data = loaders(n=48, batch_size=16, val=False)
    cfg = base_cfg(epochs=3) | {"optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9}}
    whole = Trainer(TwoHeads(), train_loader=data["train_loader"], cfg=cfg, task=Alternating(), quiet=True, run_dir=tmp_path / "a")
    whole.fit()

    def stop_after_four(t: Any) -> None:
        if t.loop.global_step == 4:
            t.request_stop()

    from cnnkit.train import TrainingInterrupted

    first = Trainer(TwoHeads(), train_loader=data["train_loader"], cfg=cfg, task=Alternating(), quiet=True,
                    run_dir=tmp_path / "b", on_step_end=stop_after_four)
    with pytest.raises(TrainingInterrupted):
        first.fit()
    again = Trainer(TwoHeads(), train_loader=data["train_loader"], cfg=cfg, task=Alternating(), quiet=True, run_dir=tmp_path / "b")
    again.fit(resume=True)
    for p, q in zip(whole.raw_model.parameters(), again.raw_model.parameters()):
        assert torch.equal(p, q)
    assert strip_timing(again.loop.history) == strip_timing(whole.loop.history)
