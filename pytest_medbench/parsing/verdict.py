"""Strict parsing of judge replies: a verdict is an exact label, never a substring.

"Incorrect" is not "Correct" and "[Correct|Wrong]" echoed from the prompt is no verdict at all.
A reply may be JSON (``{"judgment": "Correct"}``) or start with the label, after optional markdown,
quotes, brackets or a "Verdict:"-style lead-in.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"^\s*```[^\n]*$", re.M)
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.S | re.I)
_LEAD_IN = re.compile(r"^(?:final\s+)?(?:verdict|judgment|judgement|answer|label|decision)\s*[:：]\s*", re.I)
_VERDICT_KEYS = ("judgment", "judgement", "verdict", "label", "answer", "decision")
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def _clean(text: str) -> str:
    return _FENCE.sub("", _THINK.sub("", text)).strip()


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
    """The label (as spelled in ``labels``) the reply gives, or None when it gives none unambiguously."""
    by_lower = {label.lower(): label for label in labels}
    data = loads_lenient(text) if "{" in text else None
    if isinstance(data, dict):
        for key in _VERDICT_KEYS:
            value = data.get(key)
            if isinstance(value, str) and value.strip().lower() in by_lower:
                return by_lower[value.strip().lower()]
    body = _clean(text).lstrip("*#>-_ \t\n\"'`([{")
    body = _LEAD_IN.sub("", body).lstrip("*_ \"'`([{")
    first = re.match(r"[A-Za-z]+", body)
    if not first or first.group(0).lower() not in by_lower:
        return None
    rest = body[first.end() :].lstrip()
    if rest[:1] in ("|", "/") or rest.lower().startswith("or "):  # an echoed "[Correct|Wrong]" template
        return None
    return by_lower[first.group(0).lower()]


def parse_items(text: str) -> list[dict[str, str]] | None:
    """Structured exam items: a JSON list of {type, test_name, info_required}; None if not JSON."""
    data = loads_lenient(text)
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        return None
    items = []
    for entry in data:
        if isinstance(entry, dict):
            entry = {("info_required" if key == "info_requried" else key): str(v) for key, v in entry.items()}
            items.append(entry)
    return items
