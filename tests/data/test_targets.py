import pytest
import torch

from cnnkit.data.targets import parse_targets
from cnnkit.errors import DataError


def test_auto_reads_classes_labels_and_values():
    assert parse_targets(["b", "a", "b"], kind="auto", source="f").kind == "classes"
    t = parse_targets(["cat;dog", "dog", "bird | cat"], kind="auto", source="f")
    assert t.kind == "labels" and t.names == ["bird", "cat", "dog"]
    assert t.y.tolist() == [[0, 1, 1], [0, 0, 1], [1, 1, 0]]
    v = parse_targets(["0.5", "1", "2.25"], kind="auto", source="f")
    assert v.kind == "values" and v.y.tolist() == [[0.5], [1.0], [2.25]]
    assert parse_targets(["1 2", "3 4"], kind="auto", source="f").y.shape == (2, 2)
    assert parse_targets(["1", "2"], kind="auto", source="f").kind == "classes"  # integers: class names
    assert parse_targets(["1", "2"], kind="values", source="f").y.dtype == torch.float32


def test_test_split_uses_training_names():
    t = parse_targets(["a", "c"], kind="labels", source="f", names=["a", "b", "c"])
    assert t.y.tolist() == [[1, 0, 0], [0, 0, 1]]
    with pytest.raises(DataError, match="not a label of the training split"):
        parse_targets(["z"], kind="labels", source="test.csv", names=["a"])


@pytest.mark.parametrize(
    ("cells", "kind", "match"),
    [([""], "auto", "empty label"), (["1", "x"], "values", "not a finite number"), (["1 2", "3"], "values", "same number"),
     (["a;b"], "classes", "task: multilabel"), (["nan"], "values", "not a finite number")],
)
def test_bad_cells_name_the_file_and_item(cells, kind, match):
    with pytest.raises(DataError, match=match) as e:
        parse_targets(cells, kind=kind, source="labels.csv")
    assert "labels.csv" in str(e.value)
