"""Our own prompt templates, shipped as text files beside this module, and their fingerprints."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

TEMPLATE_DIR = Path(__file__).with_name("templates")


@functools.cache
def template(name: str) -> str:
    """The text of ``templates/<name>.txt`` without its final newline."""
    return (TEMPLATE_DIR / f"{name}.txt").read_text(encoding="utf-8").rstrip("\n")


def template_hashes() -> dict[str, str]:
    """sha256 of every template file, recorded in the run metadata so prompt changes are visible."""
    return {
        path.stem: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(TEMPLATE_DIR.glob("*.txt"))
    }
