"""The .ts reader against hand-written files, every header lie, and aeon's own loader."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from cnnkit.data.sources.ts_format import read_ts
from cnnkit.errors import DataError

GOOD = """# a comment
@problemName Tiny
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down
@data
1,2,3:4,5,6:up
7,?,9,10:1,2,3,4:down
"""


def _write(tmp_path: Path, text: str, name: str = "t.ts") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_reads_multivariate_unequal_with_missing(tmp_path: Path) -> None:
    ts = read_ts(_write(tmp_path, GOOD))
    assert ts.labels == ["up", "down"] and ts.class_labels == ["up", "down"]
    assert ts.num_channels == 2 and ts.lengths.tolist() == [3, 4]
    assert ts.series[0].tolist() == [[1, 2, 3], [4, 5, 6]]
    assert math.isnan(ts.series[1][0, 1]) and ts.series[1][0, 3] == 10
    assert ts.header["problemname"] == "Tiny" and ts.has_missing


def _header(**over: str) -> str:
    h = {"univariate": "true", "equalLength": "true", "seriesLength": "3", "classLabel": "true a b", "missing": "false"}
    h.update(over)
    return "".join(f"@{k} {v}\n" for k, v in h.items() if v) + "@data\n"


@pytest.mark.parametrize(("header", "data", "message"), [
    (_header(), "1,2,3:4,5,6:a\n", r"@univariate true but the cases have 2 dimensions"),
    (_header(univariate="false", dimensions="3"), "1,2,3:4,5,6:a\n", r"@dimensions 3 but the cases have 2"),
    (_header(seriesLength=""), "1,2,3:a\n1,2:b\n", r"@equalLength true but the cases have lengths 2 to 3"),
    (_header(), "1,2,3,4:a\n", r"@seriesLength 3 but the cases have length 4"),
    (_header(), "1,?,3:a\n", r"@missing false but the data holds '\?' values"),
    (_header(), "1,2,3:c\n", r"case 1 has label 'c', which @classLabel does not declare"),
    (_header(), "1,x,3:a\n", r":\d+: value 2 is not a number: 'x'"),
    (_header(), ":a\n", r"a series of length 0"),
    (_header(), "1,2,3\n", r"declares class labels but this case has none"),
    (_header(univariate="false", seriesLength=""), "1,2,3:4,5,6:a\n1,2,3:b\n", r"1 dimensions, but the first case has 2"),
    ("@univariate true\n", "", r"has no @data line"),
    (_header(), "", r"holds no cases after @data"),
    ("@univariate maybe\n@data\n", "1:a\n", r"@univariate must be true or false"),
    ("@timeStamps true\n@classLabel true a\n@data\n", "(0,1),(1,2):a\n", r"not supported"),
])
def test_a_header_that_lies_is_one_line_naming_the_file(tmp_path: Path, header: str, data: str, message: str) -> None:
    p = _write(tmp_path, header + data)
    with pytest.raises(DataError, match=message) as info:
        read_ts(p)
    assert str(p) in str(info.value) and "\n" not in str(info.value)


def test_missing_file_folder_and_binary(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_ts(tmp_path / "nope.ts")
    with pytest.raises(DataError, match="is a folder"):
        read_ts(tmp_path)
    p = tmp_path / "bin.ts"
    p.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(DataError, match="not UTF-8"):
        read_ts(p)


@pytest.mark.parametrize("problem", ["GunPoint", "JapaneseVowels", "BasicMotions", "PickupGestureWiimoteZ"])
def test_matches_aeons_loader(problem: str) -> None:
    pytest.importorskip("aeon")
    from aeon.datasets import load_from_ts_file

    from cnnkit.data.sources.ucr import find_problem

    train, _ = find_problem(problem)
    ours = read_ts(train)
    x, y = load_from_ts_file(str(train))
    assert [str(v).lower() for v in y] == [v.lower() for v in ours.labels or []]  # aeon lower-cases labels
    theirs = list(x) if isinstance(x, list) else list(x)
    assert len(theirs) == len(ours.series)
    for a, b in zip(ours.series, theirs):
        np.testing.assert_allclose(a, np.asarray(b, dtype=np.float64))
