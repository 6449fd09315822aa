"""MedR-Bench output parsing, tolerant of what real models write.

Handles code fences echoed from the prompt, thinking blocks, leading chatter before the first
section, the upstream "Resoning" typo, ``<step n>`` tags, ``**Step n**`` headings and plain paragraphs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_STEPS = 10

_FENCE = re.compile(r"^\s*```[^\n]*$", re.M)
_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.S | re.I)
_HEADER = r"^[ \t]*(?:#+[ \t]*|\*\*)?[ \t]*{name}[ \t]*(?:\*\*)?[ \t]*[:：]?[ \t]*(?:\*\*)?[ \t]*$"
_REASONING = re.compile(_HEADER.format(name=r"(?:Reasoning|Resoning|Chain of Thought)"), re.M | re.I)
_ANSWER = re.compile(_HEADER.format(name=r"(?:Final )?(?:Answer|Diagnosis|Treatment Plan)"), re.M | re.I)
_CONCLUSION = re.compile(_HEADER.format(name=r"Conclusion"), re.M | re.I)
_REQUEST = re.compile(_HEADER.format(name=r"Additional Information Required"), re.M | re.I)
_INLINE_ANSWER = re.compile(
    r"^[ \t]*(?:#+[ \t]*|\*\*)?(?:Final )?Answer(?:\*\*)?[ \t]*[:：](?:\*\*)?[ \t]*(\S.*)$", re.M | re.I
)
_NOT_REQUIRED = re.compile(r"[\W_]*not\s+required\b", re.I)
_STEP_TAG = re.compile(r"<step\s*(\d+)>\s*(.*?)(?=<step\s*\d+>|\Z)", re.S | re.I)
_STEP_HEADING = re.compile(
    r"^\s*(?:\*\*|#+\s*)Step\s*(\d+)[^\n]*?(?:\*\*)?\s*[:.]?\s*(.*?)(?=^\s*(?:\*\*|#+\s*)Step\s*\d+|\Z)",
    re.S | re.M | re.I,
)


@dataclass(frozen=True)
class ParsedOutput:
    answer: str | None  # None: no answer section could be found
    steps: tuple[str, ...] = ()
    thinking: str | None = None
    notes: tuple[str, ...] = field(default=())  # how the parser had to bend, for the samples file

    def as_dict(self) -> dict:
        return {"answer": self.answer, "steps": list(self.steps), "notes": list(self.notes)}


def split_thinking(text: str) -> tuple[str, str | None]:
    """(visible text, thinking text) for outputs that inline a ``<think>`` block (an unclosed one runs
    to the end); the package's one ``<think>`` stripper (``visible_text``, ``parsing.verdict``)."""
    blocks = _THINK.findall(text)
    if not blocks:
        return text, None
    return _THINK.sub("", text).strip(), "\n".join(block.strip() for block in blocks)


def visible_text(text: str) -> str:
    """``text`` without its ``<think>`` blocks, stripped."""
    return split_thinking(text)[0].strip()


def normalise(text: str) -> str:
    return _FENCE.sub("", text).strip()


def _section_after(header: re.Pattern[str], text: str, stops: tuple[re.Pattern[str], ...]) -> str | None:
    match = header.search(text)
    if not match:
        return None
    rest = text[match.end() :]
    ends = [found.start() for stop in stops if (found := stop.search(rest))]
    return rest[: min(ends)].strip() if ends else rest.strip()


def split_steps(reasoning: str) -> list[str]:
    """Reasoning text -> steps: ``<step n>`` tags, else ``**Step n**`` headings, else paragraphs/lines."""
    for pattern in (_STEP_TAG, _STEP_HEADING):
        found = [body.strip() for _, body in pattern.findall(reasoning)]
        if any(found):
            return [step for step in found if step]
    pieces = reasoning.split("\n\n") if "\n\n" in reasoning else reasoning.split("\n")
    return [piece.strip() for piece in pieces if piece.strip()]


def parse_answer_output(text: str) -> ParsedOutput:
    """Reasoning steps and final answer from a single-turn (oracle diagnosis / treatment) output."""
    visible, thinking = split_thinking(text)
    body = normalise(visible)
    notes: list[str] = []
    answer = _section_after(_ANSWER, body, (_REASONING,))
    if answer is None and (inline := _INLINE_ANSWER.search(body)):
        answer, notes = inline.group(1).strip(), ["answer given inline after 'Answer:'"]
    if answer is None and (conclusion := _section_after(_CONCLUSION, body, (_REASONING, _REQUEST))):
        answer, notes = conclusion, ["no Answer section; used the Conclusion section"]
    if answer is not None:
        answer = answer.strip().strip("*").strip() or None
    reasoning = _section_after(_REASONING, body, (_ANSWER, _CONCLUSION, _REQUEST, _INLINE_ANSWER))
    if reasoning is None:
        notes.append("no Reasoning section; steps taken from the text before the answer")
        cut = _ANSWER.search(body) or _INLINE_ANSWER.search(body)
        reasoning = body[: cut.start()] if cut else ""
    steps = split_steps(reasoning)
    if len(steps) > MAX_STEPS:
        notes.append(f"{len(steps)} steps; only the first {MAX_STEPS} are scored")
    return ParsedOutput(answer, tuple(steps[:MAX_STEPS]), thinking, tuple(notes))


@dataclass(frozen=True)
class ExamTurn:
    """One turn of an examination dialogue: reasoning, conclusion so far, and what it asks for."""

    conclusion: str | None
    request: str | None  # the "Additional Information Required" section; None when absent
    steps: tuple[str, ...] = ()

    @property
    def asks_for_more(self) -> bool:
        """True when the turn requests tests or information (anything but a "Not required." answer)."""
        return bool(self.request) and not says_not_required(self.request)

    def as_dict(self) -> dict:
        return {"conclusion": self.conclusion, "request": self.request, "steps": list(self.steps)}


def says_not_required(request: str) -> bool:
    """True when a request section opens with "Not required" (after markdown or quotes): the model
    needs nothing more. A request that merely mentions it ("CBC (not required if ...)") asks for more."""
    return bool(_NOT_REQUIRED.match(request.strip()))


def parse_exam_turn(text: str) -> ExamTurn:
    """Sections of a dialogue turn, in whichever order the model wrote them."""
    body = normalise(split_thinking(text)[0])
    conclusion = _section_after(_CONCLUSION, body, (_REASONING, _REQUEST, _ANSWER))
    request = _section_after(_REQUEST, body, (_REASONING, _CONCLUSION, _ANSWER))
    reasoning = _section_after(_REASONING, body, (_CONCLUSION, _REQUEST, _ANSWER)) or ""
    return ExamTurn(conclusion or None, request or None, tuple(split_steps(reasoning)[:MAX_STEPS]))
