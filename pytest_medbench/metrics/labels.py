"""Which label of a closed label set a free-text answer gives (declared ``label`` tasks)."""

from __future__ import annotations

import re
from collections.abc import Sequence


def parse_label(text: str, labels: Sequence[str]) -> str | None:
    """The label ``text`` gives: the one whose first whole-word, case-insensitive occurrence comes
    first (the longer label when two start at the same place), returned as spelled in ``labels``;
    None when no label occurs. "Triage category: urgent." with labels (emergent, urgent) -> "urgent"."""
    found: list[tuple[int, int, str]] = []
    for label in labels:
        match = re.search(rf"(?<!\w){re.escape(label.strip())}(?!\w)", text, re.IGNORECASE)
        if match and label.strip():
            found.append((match.start(), -len(label.strip()), label))
    return min(found)[2] if found else None
