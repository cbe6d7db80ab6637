import pytest

from cnnkit.train import EarlyStopping


def test_patience_and_min_delta_hand_traced():
    es = EarlyStopping("val_accuracy", mode="max", patience=2, min_delta=0.01)
    assert es.update(0.50, epoch=1) is True
    assert es.update(0.505, epoch=2) is False  # within min_delta: not an improvement
    assert not es.should_stop
    assert es.update(0.52, epoch=3) is True and es.bad_epochs == 0
    es.update(0.40, epoch=4)
    es.update(0.51, epoch=5)
    assert es.should_stop and es.best == 0.52 and es.best_epoch == 3


def test_min_mode_and_nan_never_improves():
    es = EarlyStopping("val_loss", mode="min", patience=1)
    assert es.update(1.0, epoch=1) and not es.update(float("nan"), epoch=2) and es.should_stop


def test_state_roundtrip():
    es = EarlyStopping(patience=3)
    es.update(0.9, epoch=1), es.update(0.8, epoch=2)
    other = EarlyStopping(patience=3)
    other.load_state_dict(es.state_dict())
    assert other.state_dict() == {"best": 0.9, "best_epoch": 1, "bad_epochs": 1}


@pytest.mark.parametrize(
    "kw,msg",
    [({"mode": "up"}, "Expected mode in"), ({"patience": 0}, "Expected patience >= 1"), ({"min_delta": -1}, "Expected min_delta >= 0")],
)
def test_validation(kw, msg):
    with pytest.raises(ValueError, match=msg):
        EarlyStopping(**kw)
