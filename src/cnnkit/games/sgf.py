"""A reader for SGF game records (FF[4], Hollosi 2006) of Go: board size and the main line of moves.

Written by hand because the format needs only a few lines for what move prediction reads (``SZ`` and
the ``B``/``W`` moves of the main variation), where a library would add a dependency for the whole format.
Variations (``(...)`` inside the game tree) are skipped; pass is ``B[]`` or ``B[tt]`` on boards up to 19.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import DataError

__all__ = ["SgfGame", "parse_sgf", "sgf_to_action"]

_PROP = re.compile(r"([A-Z]{1,2})((?:\[(?:\\.|[^\]\\])*\]\s*)+)")
_VALUE = re.compile(r"\[((?:\\.|[^\]\\])*)\]")


class SgfGame:
    def __init__(self, size: int, moves: list[tuple[str, str]]) -> None:
        self.size = size
        self.moves = moves  # (colour "B"/"W", SGF point "dd" or "" for pass)


def _main_line(text: str) -> str:
    """The first variation at every branch: drop each nested ``(...)`` after the first, outside values."""
    out, depth, in_value, skip_from = [], 0, False, None
    seen_child: list[bool] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if in_value:
            if ch == "\\":
                if skip_from is None:
                    out.append(text[i : i + 2])
                i += 2
                continue
            if ch == "]":
                in_value = False
        elif ch == "[":
            in_value = True
        elif ch == "(":
            depth += 1
            if seen_child and seen_child[-1] and skip_from is None:
                skip_from = depth
            if seen_child:
                seen_child[-1] = True
            seen_child.append(False)
        elif ch == ")":
            seen_child.pop()
            if skip_from == depth:
                skip_from = None
                depth -= 1
                i += 1
                continue
            depth -= 1
        if skip_from is None:
            out.append(ch)
        i += 1
    return "".join(out)


def parse_sgf(path: str | Path) -> list[SgfGame]:
    """Every game (``(;...)`` at the top level) in an SGF file; DataError names a file that is not SGF."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from None
    games: list[SgfGame] = []
    depth, start = 0, None
    in_value = False
    for i, ch in enumerate(text):
        if in_value:
            in_value = not (ch == "]" and text[i - 1] != "\\")
            continue
        if ch == "[":
            in_value = True
        elif ch == "(":
            if depth == 0:
                start = i
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0 and start is not None:
                games.append(_parse_game(_main_line(text[start : i + 1]), path, len(games)))
    if not games:
        raise DataError(f"{path}: no SGF game records found (expected '(;GM[1]SZ[9];B[ee];W[...]...)')")
    return games


def _parse_game(text: str, path: Path, index: int) -> SgfGame:
    size, moves = 19, []
    for node in text.split(";")[1:]:
        for name, values in _PROP.findall(node):
            vals = _VALUE.findall(values)
            if name == "SZ":
                try:
                    size = int(vals[0].split(":")[0])
                except ValueError:
                    raise DataError(f"{path}: game {index + 1} has a bad board size SZ[{vals[0][:10]}]") from None
            elif name in ("B", "W"):
                moves.append((name, vals[0].strip()))
    return SgfGame(size, moves)


def sgf_to_action(point: str, size: int) -> int:
    """An SGF point (column letter, then row letter from the top) -> OpenSpiel's Go action
    (``row_from_bottom * size + column``; ``size * size`` is pass)."""
    if point == "" or (point == "tt" and size <= 19):
        return size * size
    if len(point) != 2 or not all("a" <= c <= chr(ord("a") + size - 1) for c in point):
        raise ValueError(f"Expected an SGF point like 'dd' on a {size}x{size} board. Received: {point!r}")
    col, row_top = ord(point[0]) - ord("a"), ord(point[1]) - ord("a")
    return (size - 1 - row_top) * size + col
