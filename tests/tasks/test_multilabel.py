"""MultiLabel: metrics against scikit-learn, thresholds against a brute-force search, streamed = whole split."""

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, average_precision_score, f1_score

from cnnkit.errors import DataError
from cnnkit.tasks import MultiLabel, create_task
from cnnkit.tasks.base import StepOutput
from cnnkit.tasks.multilabel import average_precision, best_thresholds


def _data(seed=0, n=200, k=5):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, k, generator=g) < 0.3).float()
    logits = 2.0 * (y - 0.5) + 1.5 * torch.randn(n, k, generator=g)
    logits[:20] = logits[:20].round()  # ties
    return logits, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_average_precision_matches_sklearn(seed):
    logits, y = _data(seed)
    ap = average_precision(logits, y)
    for j in range(y.shape[1]):
        assert ap[j].item() == pytest.approx(average_precision_score(y[:, j].numpy(), logits[:, j].numpy()), abs=1e-12)


def test_average_precision_label_without_positives_is_nan():
    ap = average_precision(torch.randn(6, 2), torch.tensor([[1, 0]] * 3 + [[0, 0]] * 3))
    assert not torch.isnan(ap[0]) and torch.isnan(ap[1])


def _step(task, logits, y):
    return lambda x, t: task.eval_step(lambda v: v, x, t)


def test_whole_split_metrics_match_sklearn_and_streamed_sums():
    logits, y = _data(3)
    task = MultiLabel()
    step = _step(task, logits, y)
    batches = [(logits[i : i + 64], y[i : i + 64]) for i in range(0, len(y), 64)]
    m = task.evaluate(step, batches, torch.device("cpu"))
    pred = (torch.sigmoid(logits) >= 0.5).numpy().astype(int)
    yt = y.numpy().astype(int)
    assert m["f1_micro"] == pytest.approx(f1_score(yt, pred, average="micro"))
    assert m["f1_macro"] == pytest.approx(f1_score(yt, pred, average="macro", zero_division=0))
    assert m["subset_accuracy"] == pytest.approx(accuracy_score(yt, pred))
    assert m["map"] == pytest.approx(average_precision_score(yt, logits.numpy(), average="macro"))
    state = task.metric_state(torch.device("cpu"))
    for x, t in batches:
        task.update_metrics(state, step(x, t))
    streamed = task.compute_metrics(state)
    for k in ("loss", "f1_micro", "subset_accuracy"):
        assert streamed[k] == pytest.approx(m[k], rel=1e-6)
    assert streamed["count"] == m["count"] == len(y)


def test_loss_is_sigmoid_cross_entropy():
    logits, y = _data(4, n=10)
    out = MultiLabel().train_step(lambda v: v, logits, y)
    assert out.loss.item() == pytest.approx(torch.nn.functional.binary_cross_entropy_with_logits(logits, y).item())


def _brute_f1(p, t, th):
    pred = p >= th
    tp, fp, fn = (pred & t).sum(), (pred & ~t).sum(), (~pred & t).sum()
    return 0.0 if 2 * tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def test_best_thresholds_reach_the_best_f1_of_any_threshold():
    logits, y = _data(5, n=80, k=3)
    probs = torch.sigmoid(logits.double())
    th = best_thresholds(probs, y)
    for j in range(3):
        p, t = probs[:, j].numpy(), y[:, j].numpy() > 0.5
        best = max(_brute_f1(p, t, c) for c in np.unique(p))
        assert _brute_f1(p, t, th[j].item()) == pytest.approx(best)
        assert _brute_f1(p, t, th[j].item()) >= _brute_f1(p, t, 0.5)


def test_fitted_thresholds_are_saved_and_rebuild_the_task():
    logits, y = _data(6, n=60, k=3)
    task = MultiLabel()
    with task.fitting_thresholds():
        out = task.evaluate(_step(task, logits, y), [(logits, y)], torch.device("cpu"))
    assert len(out["thresholds"]) == 3
    kwargs = task.fitted_kwargs()
    again = create_task("multilabel", **kwargs)
    assert torch.equal(again.decide(logits), task.decide(logits).float()) or torch.allclose(
        again.decide(logits), task.decide(logits), atol=0
    )


def test_bad_arguments_and_targets():
    with pytest.raises(ValueError, match="threshold"):
        MultiLabel(threshold=1.5)
    with pytest.raises(DataError, match="multi-hot"):
        MultiLabel().check_target(torch.tensor([0, 1]))
    with pytest.raises(DataError, match="thresholds"):
        MultiLabel(thresholds=[0.5, 0.5]).decide(torch.zeros(2, 3))


def test_present_lists_predicted_labels():
    rows = MultiLabel().present(torch.tensor([[3.0, -3.0, 1.0]]), class_names=["a", "b", "c"], top_k=2)
    assert rows[0]["labels"] == ["a", "c"] and [t["name"] for t in rows[0]["top"]] == ["a", "c"]


def test_stepoutput_shapes():
    s = MultiLabel().eval_step(lambda v: v, torch.zeros(4, 3), torch.zeros(4, 3))
    assert isinstance(s, StepOutput) and s.outputs.shape == (4, 3)
