"""Regression: Euclidean loss, MAE / RMSE / R^2 against scikit-learn, streamed = whole split for one output."""

import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from cnnkit.errors import DataError
from cnnkit.layers import LOSSES
from cnnkit.tasks import Regression
from cnnkit.tasks.regression import r2_score as our_r2


def _data(seed, n=150, k=3):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, k, generator=g) * torch.tensor([1.0, 5.0, 0.1])[:k]
    return y + 0.5 * torch.randn(n, k, generator=g), y


@pytest.mark.parametrize("seed", [0, 1])
def test_whole_split_metrics_match_sklearn(seed):
    pred, y = _data(seed)
    task = Regression()
    batches = [(pred[i : i + 40], y[i : i + 40]) for i in range(0, len(y), 40)]
    m = task.evaluate(lambda x, t: task.eval_step(lambda v: v, x, t), batches, torch.device("cpu"))
    yn, pn = y.numpy(), pred.numpy()
    assert m["mae"] == pytest.approx(mean_absolute_error(yn.ravel(), pn.ravel()), rel=1e-6)
    assert m["rmse"] == pytest.approx(mean_squared_error(yn.ravel(), pn.ravel()) ** 0.5, rel=1e-6)
    assert m["r2"] == pytest.approx(r2_score(yn, pn), rel=1e-6)
    assert m["loss"] == pytest.approx(LOSSES.get("euclidean")(pred, y).item(), rel=1e-5)


def test_r2_constant_column_and_single_output():
    t = torch.tensor([[1.0, 2.0], [1.0, 3.0], [1.0, 5.0]])
    p = torch.tensor([[1.0, 2.5], [1.0, 3.0], [1.0, 4.0]])
    assert our_r2(p, t) == pytest.approx(r2_score(t.numpy(), p.numpy()))


def test_streamed_equals_whole_split_for_one_output():
    pred, y = _data(2, k=1)
    y = y[:, 0]
    task = Regression()
    state = task.metric_state(torch.device("cpu"))
    batches = [(pred[i : i + 32], y[i : i + 32]) for i in range(0, len(y), 32)]
    for x, t in batches:
        task.update_metrics(state, task.eval_step(lambda v: v, x, t))
    s = task.compute_metrics(state)
    m = task.evaluate(lambda x, t: task.eval_step(lambda v: v, x, t), batches, torch.device("cpu"))
    for k in ("loss", "mae", "rmse", "r2"):
        assert s[k] == pytest.approx(m[k], rel=1e-6)


def test_output_of_any_shape_and_mismatch():
    task = Regression()
    out = task.train_step(lambda v: v.reshape(2, 6), torch.zeros(2, 2, 3), torch.ones(2, 2, 3))
    assert out.outputs.shape == (2, 2, 3) and out.loss.item() == pytest.approx(12 / (2 * 2))  # sum of 12 unit errors / 2N
    with pytest.raises(DataError, match="outputs"):
        task.train_step(lambda v: v, torch.zeros(2, 3), torch.ones(2, 2))
    with pytest.raises(DataError, match="real values"):
        task.check_target(torch.tensor([1, 2]))


def test_present_names_values():
    rows = Regression().present(torch.tensor([[1.0, 2.0]]), class_names=["age", "height"])
    assert rows[0]["named"] == {"age": 1.0, "height": 2.0}
