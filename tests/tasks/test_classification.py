"""The classification task against torch builtins, scikit-learn and hand-computed values."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score

from cnnkit.errors import DataError, UnknownNameError
from cnnkit.tasks import TASKS, Classification, create_task


def test_registered_and_unknown_names_suggest() -> None:
    assert isinstance(create_task("classification"), Classification)
    assert "classification" in TASKS
    with pytest.raises(UnknownNameError, match="did you mean 'classification'"):
        create_task("clasification")


def test_losses_match_torch() -> None:
    torch.manual_seed(0)
    logits, y = torch.randn(8, 5), torch.randint(0, 5, (8,))
    ident = lambda x: x  # noqa: E731
    step = Classification(label_smoothing=0.1).train_step(ident, logits, y)
    torch.testing.assert_close(step.loss, F.cross_entropy(logits, y, label_smoothing=0.1))
    # evaluation reports the plain loss even when training smooths labels
    torch.testing.assert_close(Classification(label_smoothing=0.1).eval_step(ident, logits, y).loss, F.cross_entropy(logits, y))
    onehot = F.one_hot(y, 5).float()
    torch.testing.assert_close(
        Classification(loss="sigmoid_cross_entropy").train_step(ident, logits, y).loss,
        F.binary_cross_entropy_with_logits(logits, onehot),
    )
    torch.testing.assert_close(
        Classification(loss="euclidean").train_step(ident, logits, y).loss, (logits - onehot).square().sum() / (2 * 8)
    )
    with pytest.raises(ValueError, match="label_smoothing=0"):
        Classification(loss="euclidean", label_smoothing=0.1)


def test_auxiliary_outputs_weighted_0_3_in_training_only() -> None:
    torch.manual_seed(1)
    main, aux1, aux2, y = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    task = Classification()
    step = task.train_step(lambda x: (main, aux1, aux2), torch.empty(4), y)
    expected = F.cross_entropy(main, y) + 0.3 * (F.cross_entropy(aux1, y) + F.cross_entropy(aux2, y))
    torch.testing.assert_close(step.loss, expected)
    assert step.outputs is main
    torch.testing.assert_close(task.eval_step(lambda x: (main, aux1), torch.empty(4), y).loss, F.cross_entropy(main, y))


def test_metrics_accumulate_like_sklearn() -> None:
    torch.manual_seed(2)
    task = Classification()
    state = task.metric_state(torch.device("cpu"))
    preds, targets, losses = [], [], []
    for n in (7, 3, 11):
        logits, y = torch.randn(n, 4), torch.randint(0, 4, (n,))
        step = task.eval_step(lambda x: x, logits, y)
        task.update_metrics(state, step)
        preds += logits.argmax(1).tolist()
        targets += y.tolist()
        losses += F.cross_entropy(logits, y, reduction="none").tolist()
    m = task.compute_metrics(state)
    assert m["count"] == 21
    assert m["accuracy"] == pytest.approx(accuracy_score(targets, preds))
    assert m["loss"] == pytest.approx(sum(losses) / 21, rel=1e-6)
    empty = task.compute_metrics(task.metric_state(torch.device("cpu")))
    assert empty["count"] == 0


def test_present_top_k_probabilities() -> None:
    logits = torch.tensor([[0.0, 1.0, 2.0], [3.0, 0.0, 0.0]])
    out = Classification().present(logits, class_names=["a", "b", "c"], top_k=2)
    p = torch.softmax(logits.double(), 1)
    assert [t["name"] for t in out[0]["top"]] == ["c", "b"]
    assert out[0]["top"][0]["probability"] == pytest.approx(float(p[0, 2]))
    assert out[1]["top"][0] == {"index": 0, "name": "a", "probability": pytest.approx(float(p[1, 0]))}
    assert len(Classification().present(logits, top_k=10)[0]["top"]) == 3


def test_check_target() -> None:
    task = Classification()
    task.check_target(torch.tensor([0, 1]))
    with pytest.raises(DataError, match="class indices"):
        task.check_target(torch.zeros(2, 3))
