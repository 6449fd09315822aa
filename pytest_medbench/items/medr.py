"""MedR-Bench items: one case in one setting = one pytest item.

| setting               | the model sees            | scores                                          |
|-----------------------|---------------------------|-------------------------------------------------|
| `oracle_diagnosis`    | the full summary          | accuracy, efficiency, factuality, completeness  |
| `exam_1turn`          | summary without its tests | precision, recall; efficiency, factuality       |
| `diagnosis_1turn`     | + one agent reply         | accuracy, efficiency, factuality, completeness  |
| `exam_free_turn`      | + up to 4 agent replies   | precision, recall                               |
| `diagnosis_free_turn` | + up to 4 agent replies   | accuracy                                        |
| `treatment`           | the full summary          | accuracy, efficiency, factuality, completeness  |

The first five run on the diagnosis cases, `treatment` on the treatment cases; the exam reasoning is
the ask turn's (reports rarely justify their tests, so it has no completeness).
An item passes when its answer is judged correct (exam settings: precision and recall both >= 0.5).
An oracle or treatment output without an Answer section goes to the judge whole, as the official code
sends it; a dialogue's last turn without a Conclusion section likewise.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..data.medr import Case, ancillary_entries, slug
from ..metrics.score import ItemScore
from ..parsing.medr import MAX_STEPS, parse_answer_output, parse_exam_turn, visible_text
from .base import Services, Transcript
from .dialogue import FREE_TURN, ONE_TURN, run_dialogue, served_requests

SETTING_CATEGORY = {
    "oracle_diagnosis": "diagnosis",
    "exam_1turn": "exam_recommendation",
    "diagnosis_1turn": "diagnosis",
    "exam_free_turn": "exam_recommendation",
    "diagnosis_free_turn": "diagnosis",
    "treatment": "treatment_planning",
}
SETTINGS_BY_KIND = {
    "diagnosis": (
        "oracle_diagnosis",
        "exam_1turn",
        "diagnosis_1turn",
        "exam_free_turn",
        "diagnosis_free_turn",
    ),
    "treatment": ("treatment",),
}
DIALOGUE_MODE = {
    "exam_1turn": ONE_TURN,
    "diagnosis_1turn": ONE_TURN,
    "exam_free_turn": FREE_TURN,
    "diagnosis_free_turn": FREE_TURN,
}
EXAM_PASS = 0.5


def render_answer(steps: list[str], answer: str) -> str:
    """A single-turn output in the layout our prompts ask for (used by the oracle and the baseline)."""
    tagged = "\n".join(f"<step {number}> {step}" for number, step in enumerate(steps, start=1))
    return f"### Reasoning:\n{tagged}\n\n### Answer:\n{answer}"


def render_turn(steps: list[str], request: str, conclusion: str) -> str:
    """A dialogue turn in the layout our prompts ask for."""
    tagged = "\n".join(f"<step {number}> {step}" for number, step in enumerate(steps, start=1))
    return (
        f"### Chain of Thought:\n{tagged}\n\n### Additional Information Required:\n{request}\n\n"
        f"### Conclusion:\n{conclusion}"
    )


@dataclass(frozen=True, repr=False)
class MedrItem:
    case: Case
    task: str  # the setting
    benchmark: str = "medr"

    def __repr__(self) -> str:
        return f"<{self.benchmark} item {self.param_id}>"

    @property
    def category(self) -> str:
        return SETTING_CATEGORY[self.task]

    @property
    def item_id(self) -> str:
        return self.case.case_id

    @property
    def param_id(self) -> str:
        return f"{self.task}-{self.case.case_id}"

    @property
    def markers(self) -> tuple[str, ...]:
        groups = [f"body_{slug(label)}" for label in self.case.body_systems]
        groups += [f"disorder_{slug(label)}" for label in self.case.disorders]
        return ("medr", self.category, self.task, *(("rare",) if self.case.rare else ()), *groups)

    @property
    def tags(self) -> dict:
        return {"rare": self.case.rare, "body_systems": [slug(label) for label in self.case.body_systems]}

    # -- what the case gives the judges -------------------------------------------------------

    @property
    def reference(self) -> str:
        """What the answer is judged against: the hidden tests' names for the exam settings."""
        if self.category == "exam_recommendation":
            split = self.case.split_ancillary()
            return "; ".join(name for name, _ in ancillary_entries(split[1])) if split else ""
        return self.case.reference

    @property
    def goal(self) -> str:
        """The "final reasoning goal" the efficiency judge measures steps against."""
        return (
            self.case.final_diagnosis or self.case.reference
            if self.case.kind == "diagnosis"
            else self.case.reference
        )

    @property
    def reference_reasoning(self) -> str:
        """The reference reasoning completeness is recall against."""
        if self.case.kind == "diagnosis":
            return f"{self.case.reference_reasoning}\n Final diagnosis:\n{self.case.final_diagnosis}"
        return f"{self.case.reference_reasoning}\n Treatment plan results:\n{self.case.reference}"

    # -- solving ------------------------------------------------------------------------------

    def builtin_context(self, turn: int = 0) -> dict:
        """What the built-in models see for one model turn: the oracle's answer in the expected layout."""
        steps = [line.strip() for line in self.case.reference_reasoning.split("\n") if line.strip()][
            :MAX_STEPS
        ]
        steps = steps or [self.case.reference]
        context = {
            "benchmark": "medr",
            "task": self.task,
            "case": self.case.case_id,
            "turn": turn,
            "input": self.case.summary,
        }
        if self.task not in DIALOGUE_MODE:
            context["reference"] = render_answer(steps, self.case.reference)
            context["answer_format"] = render_answer(["The leading problem is {answer}."], "{answer}")
            return context
        split = self.case.split_ancillary()
        tests = [name for name, _ in ancillary_entries(split[1])] if split else []
        request = "\n".join(f"{n}. {name}" for n, name in enumerate(tests, start=1)) or "Not required."
        context["replay_settings"] = [
            s for s, mode in DIALOGUE_MODE.items() if mode == DIALOGUE_MODE[self.task]
        ]
        context["reference"] = render_turn(
            steps, request if turn == 0 else "Not required.", self.case.reference
        )
        context["answer_format"] = render_turn(
            ["The leading problem is {answer}."], "Not required.", "{answer}"
        )
        return context

    def solve(self, services: Services) -> Transcript:
        mode = DIALOGUE_MODE.get(self.task)
        if mode is not None:
            return run_dialogue(mode, self.case, services, self.builtin_context)
        messages = services.prompts.single_turn_messages(self.task, self.case.summary)
        return Transcript(messages, services.ask_model(messages, self.builtin_context()).text)

    # -- scoring ------------------------------------------------------------------------------

    def score(self, transcript: Transcript, services: Services) -> ItemScore:
        judge = services.judge
        if self.category == "exam_recommendation":
            return self._score_exam(transcript, services)
        notes = [turn["parse_error"] for turn in transcript.turns if "parse_error" in turn]
        if self.task in DIALOGUE_MODE:
            final = parse_exam_turn(transcript.output)
            answer, steps = final.conclusion, list(final.steps)
            if answer is None:
                answer = transcript.output.strip() or None
                notes.append("no Conclusion section in the final turn: the whole message was judged")
            parsed = {"answer": answer, "steps": steps, "turns": transcript.turns}
        else:
            result = parse_answer_output(transcript.output)
            answer, steps = result.answer, list(result.steps)
            notes += result.notes
            parsed = result.as_dict()
            if answer is None:
                answer = visible_text(transcript.output) or None
                notes.append("no Answer section: the whole output was judged, as the official code does")
        if answer is None:
            notes.append("no answer could be parsed: scored as incorrect")
            correct = False
        elif self.case.kind == "treatment":
            correct = judge.treatment_correct(answer, self.case.reference, self.case)
        else:
            correct = judge.diagnosis_correct(answer, self.case.reference)
        scores: dict[str, float | None] = {"accuracy": float(correct)}
        if self.task != "diagnosis_free_turn":
            reasoning = judge.reasoning(steps, self.case.summary, self.goal, self.reference_reasoning)
            scores |= {name: reasoning[name] for name in ("efficiency", "factuality", "completeness")}
            parsed["reasoning"] = {k: v for k, v in reasoning.items() if k not in scores}
        parsed["notes"] = [*parsed.get("notes", []), *notes]
        parsed["judge"] = "offline (approximate)" if judge.approximate else "llm"
        if ballots := getattr(judge, "ballots", None):  # a jury: every judge's value, for agreement
            parsed["jury"] = ballots
        rule = f"{parsed['judge']} judge: {'correct' if correct else 'wrong'} (must be judged correct)"
        return ItemScore(scores, correct, parsed, rule=rule)

    def _score_exam(self, transcript: Transcript, services: Services) -> ItemScore:
        before, ancillary = self.case.split_ancillary()
        result = services.judge.exam_scores(served_requests(transcript), ancillary)
        scores: dict[str, float | None] = {"precision": result["precision"], "recall": result["recall"]}
        parsed = {"requests": served_requests(transcript), "turns": transcript.turns, "exam": result}
        parsed["notes"] = [turn["parse_error"] for turn in transcript.turns if "parse_error" in turn]
        if (
            self.task == "exam_1turn"
        ):  # the ask turn's reasoning; reports rarely justify tests, so no completeness
            steps = transcript.turns[0]["parsed"]["steps"]
            reasoning = services.judge.reasoning(steps, before, self.goal, "")
            scores |= {"efficiency": reasoning["efficiency"], "factuality": reasoning["factuality"]}
        precision, recall = scores["precision"], scores["recall"]
        passed = (precision or 0.0) >= EXAM_PASS and (recall or 0.0) >= EXAM_PASS
        if ballots := getattr(services.judge, "ballots", None):
            parsed["jury"] = ballots
        shown = ("-" if value is None else f"{value:.2f}" for value in (precision, recall))
        rule = "precision {}, recall {} (both must be >= {:.2f})".format(*shown, EXAM_PASS)
        return ItemScore(scores, passed, parsed, rule=rule)


def medr_items(cases: list[Case]) -> Iterator[MedrItem]:
    for case in cases:
        for setting in SETTINGS_BY_KIND[case.kind]:
            yield MedrItem(case, setting)
