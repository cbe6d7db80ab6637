"""Terminal-safe text: strings read from received files are data, never terminal instructions.

A run folder received from someone else carries strings (class names, model names, paths, file content
quoted in an error) that cnnkit prints. Printed raw, ``ESC ]0;title BEL`` renames the terminal window,
``ESC [2J`` clears it, a carriage return overwrites the line before it, and a bidirectional override
(U+202E) makes text read backwards. :func:`safe_text` removes all of those; rich output additionally needs
:func:`rich.markup.escape`, since ``[bold red]`` in a class name is markup to rich (see :func:`safe_markup`).
"""

from __future__ import annotations

import re
import unicodedata

from rich.markup import escape

__all__ = ["safe_markup", "safe_text"]

# ECMA-48 escape sequences, 7-bit (ESC ...) and 8-bit (C1 CSI 0x9b, OSC 0x9d ...) forms:
# CSI ``ESC [ params final``; OSC/DCS/PM/APC/SOS strings ended by BEL or ST (``ESC \`` or 0x9c), or
# unterminated to the end of the text; any other two-byte ``ESC x``.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
# Line and paragraph breaks become spaces (a name stays on its line); other control and format
# characters (C0, DEL, C1, bidi overrides and isolates, zero-width joiners, BOM) are removed.
_BREAKS = re.compile(r"[\n\r\t\v\f\x85\u2028\u2029]+")


def safe_text(s: object, max_len: int | None = 200) -> str:
    """``str(s)`` with escape sequences and control characters removed, fit for a terminal.

    Args:
        s: Any value; it is converted with ``str``.
        max_len: The longest result in characters; longer text is cut and ends with ``"..."``.
            ``None`` keeps the whole text.

    Returns:
        One line of printable text: line breaks and tabs become single spaces, escape sequences
        (CSI, OSC, ...) are removed whole, other control and format characters (Unicode categories Cc and
        Cf, which include bidirectional overrides) are dropped.

    Example:
        >>> safe_text("cat\\x1b]0;owned\\x07\\nfish")
        'cat fish'
    """
    text = _ESCAPES.sub("", str(s))
    text = _BREAKS.sub(" ", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))
    if max_len is not None and len(text) > max_len:
        text = text[: max(max_len - 3, 0)] + "..."
    return text


def safe_markup(s: object, max_len: int | None = 200) -> str:
    """:func:`safe_text`, then escaped for rich markup, so ``[red]`` prints as typed."""

    return escape(safe_text(s, max_len))
