"""task: segmentation: losses against torch / hand references, metrics against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix, jaccard_score

from cnnkit.errors import DataError
from cnnkit.tasks import create_task
from cnnkit.tasks.segmentation import Segmentation, align_target
from cnnkit.tasks.segmentation_metrics import pixel_confusion, scores_from_confusion


def _batch(seed=0, b=3, k=4, h=9, w=7, ignore=True):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, k, h, w, generator=g)
    y = torch.randint(0, k, (b, h, w), generator=g)
    if ignore:
        y[torch.rand(b, h, w, generator=g) < 0.2] = 255
    return logits, y


def test_cross_entropy_matches_torch_with_weights_and_ignore():
    logits, y = _batch()
    w = [0.5, 1.0, 2.0, 3.0]
    got = Segmentation(class_weights=w).criterion(logits, y)
    ref = F.cross_entropy(logits, y, weight=torch.tensor(w), ignore_index=255)
    torch.testing.assert_close(got, ref)
    assert float(Segmentation().criterion(logits, torch.full_like(y, 255))) == 0.0  # all ignored: 0, not nan


def test_dice_loss_against_a_loop():
    logits, y = _batch(seed=1)
    p = torch.softmax(logits, 1)
    d = []
    for c in range(4):
        num = den_p = den_g = 0.0
        for idx in np.ndindex(*y.shape):
            if y[idx] == 255:
                continue
            pc, gc = float(p[idx[0], c, idx[1], idx[2]]), float(y[idx] == c)
            num += pc * gc
            den_p += pc * pc
            den_g += gc * gc
        d.append((2 * num + 1.0) / (den_p + den_g + 1.0))
    got = Segmentation(loss="dice").criterion(logits, y)
    assert abs(float(got) - (1 - np.mean(d))) < 1e-5
    both = Segmentation(loss="softmax_cross_entropy+dice", dice_weight=0.5).criterion(logits, y)
    ce = F.cross_entropy(logits, y, ignore_index=255)
    assert abs(float(both) - float(ce) - 0.5 * (1 - np.mean(d))) < 1e-5


def test_metrics_match_scikit_learn():
    task = Segmentation(num_classes=4)
    state = task.metric_state(torch.device("cpu"))
    preds, truths = [], []
    for seed in range(3):
        logits, y = _batch(seed=seed)
        task.update_metrics(state, task.eval_step(lambda x: x, logits, y))
        keep = y != 255
        preds.append(logits.argmax(1)[keep].numpy())
        truths.append(y[keep].numpy())
    p, t = np.concatenate(preds), np.concatenate(truths)
    np.testing.assert_array_equal(task.confusion(state), confusion_matrix(t, p, labels=range(4)))
    m = task.compute_metrics(state)
    assert m["count"] == 9
    assert m["miou"] == pytest.approx(jaccard_score(t, p, average="macro"))
    assert m["per_class_iou"] == pytest.approx(list(jaccard_score(t, p, average=None)))
    assert m["accuracy"] == pytest.approx((p == t).mean())


def test_confusion_trims_to_seen_classes_and_absent_classes_are_skipped():
    task = Segmentation()
    state = task.metric_state(torch.device("cpu"))
    logits = torch.zeros(1, 6, 2, 2)
    logits[0, 1] = 5
    y = torch.tensor([[[1, 1], [3, 255]]])
    task.update_metrics(state, task.eval_step(lambda x: x, logits, y))
    cm = task.confusion(state)
    assert cm.shape == (4, 4) and cm[1, 1] == 2 and cm[3, 1] == 1
    s = scores_from_confusion(cm)
    assert s["per_class_iou"] == [None, 2 / 3, None, 0.0]
    assert s["miou"] == pytest.approx(1 / 3)


def test_pixel_confusion_matches_scikit_learn():
    _, y = _batch(seed=4, ignore=False)
    pred = torch.randint(0, 4, y.shape, generator=torch.Generator().manual_seed(5))
    cm = pixel_confusion(pred, y, 4, ignore_index=None)
    np.testing.assert_array_equal(cm.numpy(), confusion_matrix(y.flatten(), pred.flatten(), labels=range(4)))


def test_valid_outputs_score_the_centre_of_the_mask():
    y = torch.arange(36).view(1, 6, 6) % 3
    cropped = align_target(torch.zeros(1, 3, 2, 2), y)
    assert torch.equal(cropped, y[:, 2:4, 2:4])
    with pytest.raises(DataError, match="do not fit masks"):
        align_target(torch.zeros(1, 3, 8, 8), y)


def test_tuple_outputs_add_auxiliary_losses():
    logits, y = _batch(seed=2)
    task = Segmentation(aux_weight=0.25)
    out = task.train_step(lambda x: (x, x * 2), logits, y)
    expected = task.criterion(logits, y) + 0.25 * task.criterion(logits * 2, y)
    torch.testing.assert_close(out.loss, expected)


def test_registered_and_validated():
    assert isinstance(create_task("segmentation", defaults={"loss": "softmax_cross_entropy"}), Segmentation)
    for bad in (dict(loss="focal"), dict(class_weights=[-1.0]), dict(num_classes=0), dict(dice_weight=-1.0)):
        with pytest.raises(Exception, match="Expected"):
            create_task("segmentation", **bad)
    with pytest.raises(DataError, match="task segmentation reads"):
        Segmentation().check_target(torch.zeros(3, dtype=torch.long))


def test_headline_and_present():
    task = Segmentation()
    assert task.headline({"test_miou": 0.5, "test_accuracy": 0.9}) == "test mIoU: 50.00% (pixel accuracy 90.00%)"
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 1, 0] = 1
    assert task.present(logits, class_names=["bg", "fg"]) == [{"classes": {"bg": 0.5, "fg": 0.5}}]
