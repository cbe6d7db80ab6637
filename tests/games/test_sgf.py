from __future__ import annotations

import pytest

from cnnkit.errors import DataError
from cnnkit.games.sgf import parse_sgf, sgf_to_action


def test_points_to_openspiel_actions():
    # OpenSpiel's Go: action = row from the bottom * size + column; 'a1' = 0, 'j9' = 80 on 9x9, pass = 81.
    assert sgf_to_action("ai", 9) == 0  # column a, bottom row
    assert sgf_to_action("ia", 9) == 80  # column 9, top row
    assert sgf_to_action("", 9) == 81 and sgf_to_action("tt", 9) == 81
    with pytest.raises(ValueError, match="SGF point"):
        sgf_to_action("zz", 9)


def test_parse_main_line_and_skip_variations(tmp_path):
    path = tmp_path / "g.sgf"
    path.write_text("(;GM[1]SZ[9]C[a comment with \\] bracket];B[ee];W[cc](;B[gg];W[])(;B[aa]))\n(;SZ[9];B[dd])")
    games = parse_sgf(path)
    assert len(games) == 2
    assert games[0].size == 9 and games[0].moves == [("B", "ee"), ("W", "cc"), ("B", "gg"), ("W", "")]
    assert games[1].moves == [("B", "dd")]


def test_not_sgf_is_one_line(tmp_path):
    path = tmp_path / "x.sgf"
    path.write_text("hello")
    with pytest.raises(DataError, match="no SGF game records"):
        parse_sgf(path)
