"""UTF-8 for text that may hold a lone surrogate (``"\\ud800"``, from a data file's broken escape or a
test's own text), which strict UTF-8 cannot carry: it is written as its escape, ``\\ud800``. Inside
JSON text that escape reads back as the same string; elsewhere (a hash, a page) it stands for it.
Every other text is encoded exactly as strict UTF-8 encodes it, so cache keys do not change."""

from __future__ import annotations

ERRORS = "backslashreplace"  # the ``errors`` of every file of ours written as UTF-8 text


def utf8(text: str) -> bytes:
    return text.encode("utf-8", ERRORS)


def utf8_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by its escape: a string UTF-8 can carry (SQLite's,
    a terminal's)."""
    return utf8(text).decode("utf-8")
