"""Strict parsing of judge replies: a verdict is an exact label, never a substring or a prefix.

A reply is a verdict when, trimmed (and unwrapped from one code fence, a ``Verdict:``-style label,
markdown emphasis, quotes, brackets and final punctuation), it is exactly one allowed label, or
when it is a JSON object whose verdict key holds exactly one. "Incorrect" is not "Correct",
"Correct, although the prediction is Wrong." is no verdict, and neither is an echoed "[Correct|Wrong]".
"""

from __future__ import annotations

import json
import re
from typing import Any

from .medr import visible_text

_FENCE = re.compile(r"^\s*```[^\n]*$", re.M)
_LEAD_IN = re.compile(r"^(?:final\s+)?(?:verdict|judgment|judgement|answer|label|decision)\s*[:：]\s*", re.I)
_ONE_FENCE = re.compile(r"```[^\n`]*\n(.*?)\n?```", re.S)
_WRAPPING = "*_`\"'()[]{} \t\n"
_VERDICT_KEYS = ("judgment", "judgement", "verdict", "label", "answer", "decision")
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def _clean(text: str) -> str:
    return _FENCE.sub("", visible_text(text)).strip()


def loads_lenient(text: str) -> Any:
    """The first JSON object or array in ``text``, tolerating fences and trailing commas; None if none."""
    body = _clean(text)
    starts = [i for i in (body.find("{"), body.find("[")) if i >= 0]
    if not starts:
        return None
    start = min(starts)
    closer = "}" if body[start] == "{" else "]"
    end = body.rfind(closer)
    if end < start:
        return None
    try:
        return json.loads(_TRAILING_COMMA.sub(r"\1", body[start : end + 1]))
    except json.JSONDecodeError:
        return None


def parse_verdict(text: str, labels: tuple[str, ...]) -> str | None:
    """The label (as spelled in ``labels``) the reply is, or None when it is anything else."""
    by_lower = {label.lower(): label for label in labels}
    body = visible_text(text)
    if fenced := _ONE_FENCE.fullmatch(body):
        body = fenced.group(1).strip()
    if body.startswith("{") and body.endswith("}"):
        data = loads_lenient(body)
        values = [data.get(key) for key in _VERDICT_KEYS] if isinstance(data, dict) else []
        found = [v.strip().lower() for v in values if isinstance(v, str) and v.strip().lower() in by_lower]
        return by_lower[found[0]] if len(found) == 1 else None
    body = _LEAD_IN.sub("", body.strip(_WRAPPING), count=1)
    body = body.strip(_WRAPPING).rstrip(".!").strip(_WRAPPING)
    return by_lower.get(body.lower())


def parse_items(text: str) -> list[dict[str, str]] | None:
    """Structured exam items: a JSON list of {type, test_name, info_required} objects (a lone object
    counts as a list of one; the misspelt key ``info_requried`` is read as ``info_required``).

    None when the reply is no such list: not JSON, or a list holding anything but objects (a string,
    a number): dropping those entries would change the item counts precision and recall divide by.
    """
    data = loads_lenient(text)
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(entry, dict) for entry in data):
        return None
    return [
        {("info_required" if key == "info_requried" else key): str(v) for key, v in entry.items()}
        for entry in data
    ]
