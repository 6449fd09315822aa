"""Built-in models, answered in-process: no litellm import (seconds) and no litellm call (about
2 ms each), so ``pytest suites/`` with a built-in costs what the harness costs. They still go through
the client (retries, error classification) like any model; only the transport differs.

- ``medbench/oracle`` answers with the item's reference in the format the task expects: every
  final-answer metric must come out perfect (the harness's self-test).
- ``medbench/baseline`` answers with a non-LLM heuristic (see ``baseline.py``).
- ``replay:PATH`` (``medbench/replay`` with the path as api_base) answers from recorded outputs.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from .baseline import baseline_answer
from .errors import ModelCallError
from .transport import Answer, Endpoint

PROVIDER = "medbench"
MODELS = ("oracle", "baseline", "replay")


@functools.cache
def load_replay(path: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Index a replay JSON Lines file by (task, id) for MedS and (case, setting) for MedR records."""
    index: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelCallError("replay", f"cannot read replay file {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            key = (
                (record["task"], str(record["id"]))
                if "task" in record
                else (record["case"], record["setting"])
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ModelCallError("replay", f"{path} line {number}: not a replay record ({exc})") from exc
        index[key] = record
    return index


def replay_answer(path: str, context: dict) -> str:
    records = load_replay(path)
    if context.get("benchmark") == "medr":  # a dialogue may be recorded under either of its settings
        keys = [
            (context.get("case", ""), s) for s in context.get("replay_settings") or [context.get("task", "")]
        ]
    else:
        keys = [(context.get("task", ""), str(context.get("id", "")))]
    key = next((key for key in keys if key in records), keys[0])
    record = records.get(key)
    if record is None:
        raise ModelCallError("replay_missing", f"{path} has no record for {key[0]} {key[1]}")
    outputs = record.get("outputs") or [record.get("output")]
    turn = int(context.get("turn", 0))
    if turn >= len(outputs) or not isinstance(outputs[turn], str):
        raise ModelCallError("replay_missing", f"{path} has no output for turn {turn} of {key[0]} {key[1]}")
    return outputs[turn]


def answer(model: str, api_base: str | None, context: dict) -> str:
    if model == "oracle":
        return context["reference"]
    if model == "baseline":
        return baseline_answer(context)
    if model == "replay":
        return replay_answer(api_base or "", context)
    raise ModelCallError("not_found", f"unknown built-in model medbench/{model}; known: {', '.join(MODELS)}")


class BuiltinTransport:
    """The transport of ``medbench/...`` and ``replay:PATH``: the answer is computed from the item's
    ``context``, with no token counts claimed (no tokenizer runs here) and no cost."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._model = endpoint.model.removeprefix(f"{PROVIDER}/")

    def send(
        self, messages: list[dict[str, str]], params: dict[str, Any], timeout_s: float, context: dict | None
    ) -> Answer:
        text = answer(self._model, self.endpoint.api_base, context or {})
        return Answer(
            text=text,
            finish_reason="stop",
            api_base=self.endpoint.api_base,
            served_model=self.endpoint.model,
        )
