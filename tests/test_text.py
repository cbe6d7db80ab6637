"""safe_text / safe_markup: what a received string may and may not do to a terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from cnnkit._text import safe_markup, safe_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("cat", "cat"),
        ("\x1b]0;owned\x07cat", "cat"),  # OSC 0: sets the terminal title (BEL-terminated)
        ("\x1b]2;owned\x1b\\cat", "cat"),  # ... ST-terminated
        ("\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\", "link"),  # OSC 8 hyperlink
        ("\x1b[2J\x1b[Hdog", "dog"),  # CSI: clear screen, cursor home
        ("\x1b[31;1mred\x1b[0m", "red"),
        ("\x9b31mred", "red"),  # 8-bit CSI
        ("\x1bcreset", "reset"),  # ESC c: full terminal reset
        ("a\rb", "a b"),  # a carriage return would overwrite what came before
        ("two\nlines\r\n", "two lines "),
        ("tab\there", "tab here"),
        ("bell\x07\x00\x7f", "bell"),
        ("abc\u202edcba", "abcdcba"),  # right-to-left override
        ("\u2066x\u2069", "x"),  # bidi isolates
        ("naïve 猫 🐈", "naïve 猫 🐈"),  # printable Unicode is kept
        ("[bold]b[/bold]", "[bold]b[/bold]"),  # plain text: markup is the caller's concern (safe_markup)
        (42, "42"),
    ],
)
def test_safe_text(raw: object, expected: str) -> None:
    assert safe_text(raw) == expected


def test_safe_text_cuts_long_text() -> None:
    assert safe_text("x" * 500) == "x" * 197 + "..."
    assert safe_text("x" * 500, max_len=10) == "xxxxxxx..."
    assert safe_text("x" * 500, max_len=None) == "x" * 500
    assert safe_text("short", max_len=5) == "short"


def test_safe_markup_prints_as_typed() -> None:
    console = Console(record=True, width=80, color_system=None, file=io.StringIO())
    console.print(safe_markup("[bold red]bird[/bold red] \x1b]0;t\x07!"))
    assert console.export_text().strip() == "[bold red]bird[/bold red] !"
