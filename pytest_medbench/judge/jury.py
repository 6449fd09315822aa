"""A jury of LLM judges: verdicts by majority (a tie is incorrect), graded scores by the mean, and
every judge's value kept per item (``ballots``) so the report can measure how far they agree."""

from __future__ import annotations

from typing import Any

from .llm import LLMJudge

REASONING_METRICS = ("efficiency", "factuality", "completeness")


def _mean(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return sum(known) / len(known) if known else None


class Jury:
    """Asks every judge; one instance serves one item and epoch, so ``ballots`` is that item's."""

    approximate = False

    def __init__(self, judges: list[LLMJudge]) -> None:
        self.judges = judges
        self.ballots: dict[str, list[float | None]] = {}

    def _verdict(self, votes: list[bool]) -> bool:
        self.ballots["accuracy"] = [float(vote) for vote in votes]
        return sum(votes) * 2 > len(votes)  # a strict majority; a tie is incorrect

    def diagnosis_correct(self, predicted: str, gold: str) -> bool:
        return self._verdict([judge.diagnosis_correct(predicted, gold) for judge in self.judges])

    def treatment_correct(self, predicted: str, gold: str, case: Any) -> bool:
        return self._verdict([judge.treatment_correct(predicted, gold, case) for judge in self.judges])

    def verdict(
        self, answer: str, reference: str, question: str | None = None, rubric: str | None = None
    ) -> bool:
        return self._verdict([judge.verdict(answer, reference, question, rubric) for judge in self.judges])

    def _graded(self, results: list[dict[str, Any]], metrics: tuple[str, ...]) -> dict[str, Any]:
        """The first judge's details, with each metric the mean of the judges' values."""
        merged = dict(results[0])
        for name in metrics:
            self.ballots[name] = [result[name] for result in results]
            merged[name] = _mean(self.ballots[name])
        return merged

    def exam_scores(self, requests: str, ancillary: str) -> dict[str, Any]:
        results = [judge.exam_scores(requests, ancillary) for judge in self.judges]
        return self._graded(results, ("precision", "recall"))

    def reasoning(self, steps: list[str], case: str, goal: str, reference_reasoning: str) -> dict[str, Any]:
        results = [judge.reasoning(steps, case, goal, reference_reasoning) for judge in self.judges]
        return self._graded(results, REASONING_METRICS)
