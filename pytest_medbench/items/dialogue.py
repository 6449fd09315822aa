"""MedR-Bench examination dialogues: the model asks for tests, the patient agent serves them.

- 1-turn: the model sees the case without its tests and says what it needs; the agent answers
  (always, even "Not required."); the model then gives its diagnosis in the same conversation.
- free-turn: up to 5 model turns; it stops when a turn needs nothing more, and the turn before the
  last is told that the next answer must be final. The requests of every turn but the last are the
  exam list (a last-turn request is never served).

One dialogue serves two items (exam and diagnosis), so it is memoised per case and epoch.
"""

from __future__ import annotations

from collections.abc import Callable

from ..data.medr import Case
from ..parsing.medr import parse_exam_turn
from .base import Services, Transcript

MAX_TURNS = 5
ONE_TURN, FREE_TURN = "1turn", "free_turn"


def run_dialogue(mode: str, case: Case, services: Services, context: Callable[[int], dict]) -> Transcript:
    """The case's dialogue in ``mode``, run once per process and epoch; ``context(turn)`` feeds built-ins."""
    key = (case.case_id, mode, services.epoch)
    if key not in services.memo:
        runner = _one_turn if mode == ONE_TURN else _free_turn
        first = len(services.calls)
        transcript = runner(case, services, context)
        services.memo[key] = (transcript, services.calls[first:])
        return transcript
    transcript, calls = services.memo[key]
    services.recount(calls)  # the same calls, seen again: reused by this item, not asked again
    return transcript


def _split(case: Case) -> tuple[str, str]:
    """(the summary before its tests, the tests); a data error when the case has no "Ancillary Tests"
    line, or no finding after it: the dialogue settings then have nothing to ask for or to score."""
    from ..data.files import DataFileError, LoadError
    from ..data.medr import ancillary_entries

    split = case.split_ancillary()
    if split is None:
        fault = "no 'Ancillary Tests' line in the case summary"
    elif not ancillary_entries(split[1]):
        fault = "the 'Ancillary Tests' section of the case summary is empty"
    else:
        return split
    message = f"{fault}: the dialogue settings cannot run on it"
    raise DataFileError(LoadError(case.path, f"case {case.case_id}", message, case.case_id))


def _one_turn(case: Case, services: Services, context: Callable[[int], dict]) -> Transcript:
    before, ancillary = _split(case)
    prompts = services.prompts
    messages = prompts.opening("medr_exam_1turn", before)
    ask = services.ask_model(messages, context(0)).text
    messages.append({"role": "assistant", "content": ask})
    asked = parse_exam_turn(ask)
    first_turn = {"turn": 1, "parsed": asked.as_dict()}
    if asked.request is None:
        first_turn["parse_error"] = (
            "no 'Additional Information Required' section in the ask turn: the agent was asked for nothing"
        )
    reply = services.agent.reply(asked.request or "Not required.", before, ancillary)
    first_turn["agent_reply"] = reply
    messages.append(
        {"role": "user", "content": prompts.render("medr_diagnosis_1turn", additional_information=reply)}
    )
    final = services.ask_model(messages, context(1)).text
    messages.append({"role": "assistant", "content": final})
    turns = [first_turn, {"turn": 2, "parsed": parse_exam_turn(final).as_dict()}]
    return Transcript(messages, final, turns)


def _free_turn(case: Case, services: Services, context: Callable[[int], dict]) -> Transcript:
    before, ancillary = _split(case)
    prompts = services.prompts
    messages = prompts.opening("medr_free_turn_first", before)
    turns = []
    for number in range(1, MAX_TURNS + 1):
        text = services.ask_model(messages, context(number - 1)).text
        messages.append({"role": "assistant", "content": text})
        parsed = parse_exam_turn(text)
        turns.append({"turn": number, "parsed": parsed.as_dict()})
        if number == MAX_TURNS or not parsed.asks_for_more:
            break
        reply = services.agent.reply(parsed.request, before, ancillary)
        turns[-1]["agent_reply"] = reply
        follow_up = prompts.follow_up(reply, last_chance=number == MAX_TURNS - 1)
        messages.append({"role": "user", "content": follow_up})
    return Transcript(messages, messages[-1]["content"], turns)


def served_requests(transcript: Transcript) -> str:
    """The exam requests the agent answered, in order (a final turn's request is never served)."""
    return "\n".join(
        turn["parsed"]["request"]
        for turn in transcript.turns
        if "agent_reply" in turn and turn["parsed"]["request"]
    )
