"""MedR-Bench prompts: our own templates by default, or the upstream template files loaded at run time
from ``<data>/medrbench/instructions/`` (``--medbench-prompts upstream``; never shipped with us).

Both sets use the same placeholders, filled with ``str.format`` (the upstream files escape literal
braces as ``{{ }}``), so every caller renders a template by our name alone. The upstream set is the
whole upstream protocol: besides its 17 template files, the few messages its code writes inline
(system lines, the agent's user message, the last-turn notice, the factuality search follow-up).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from .templates import template

UPSTREAM_FILES = {
    "medr_oracle_diagnosis": "oracle_diagnose.txt",
    "medr_treatment": "treatment_plan_prompt.txt",
    "medr_exam_1turn": "1turn_prompt_examination_recommend.txt",
    "medr_diagnosis_1turn": "1turn_prompt_make_diagnosis.txt",
    "medr_free_turn_first": "free_turn_first_turn_prompt.txt",
    "medr_free_turn_next": "free_turn_following_turn_prompt.txt",
    "medr_agent_system": "patient_agent_prompt.txt",
    "judge_diagnosis": "acc_diagnose.txt",
    "judge_treatment": "acc_treatment_plan.txt",
    "judge_exam_items": "parse_info_requirements.txt",
    "judge_exam_match": "is_requirement_matched.txt",
    "judge_efficiency": "reasoning_efficiency.txt",
    "judge_factuality": "reasoning_factuality.txt",
    "judge_split_reference": "reasoning_split_gt_steps.txt",
    "judge_step_hit": "reasoning_check_hit.txt",
    "judge_keywords": "extract_keywords.txt",
    "judge_treatment_keywords": "treatment_plan_extract_keywords.txt",
}
# Messages the upstream code sends as string literals, not template files (docs/medr-bench.md §4.1,
# §4.4, §4.5, §6.0, §6.5): the template files themselves are only ever read from the data directory.
UPSTREAM_INLINE = {
    "medr_system": "You are a professional doctor",
    "medr_agent_user": "The junior physician wants the following information:\n{request}",
    "medr_free_turn_notice": (
        "In the next turn, you cannot ask any additional infomation and must make a final diagnoisis."
    ),
    "judge_factuality_search": (
        "After searching, the following supplementary Known Correct Information has been obtained, "
        "please make a judgment again. \n[Known Correct Information]\n{info}"
    ),
}
_DIAGNOSIS_EVALUATOR = "You are a professional medical diagnosis evaluation system."
_KNOWLEDGE_EVALUATOR = "You are a professional evaluator of medical knowledge."
UPSTREAM_JUDGE_SYSTEM = {
    "judge_diagnosis": _DIAGNOSIS_EVALUATOR,
    "judge_treatment": _DIAGNOSIS_EVALUATOR,
    "judge_treatment_keywords": _KNOWLEDGE_EVALUATOR,
    "judge_keywords": _KNOWLEDGE_EVALUATOR,
    "judge_factuality": _KNOWLEDGE_EVALUATOR,
    "judge_efficiency": "You are a reliable assistant for the analysis of thought processes.",
    "judge_split_reference": "You are a reliable thought process organizer.",
    "judge_step_hit": "You are a reliable thought process evaluator.",
    "judge_exam_items": "You are a medical text organizer.",
    "judge_exam_match": (
        "You are a medical assistant examination specialist and a medical text comparison assistant."
    ),
}
# what joins the last-turn notice to the follow-up message (upstream: one newline)
NOTICE_JOINER = {"ours": "\n\n", "upstream": "\n"}
SINGLE_TURN_TEMPLATES = {"oracle_diagnosis": "medr_oracle_diagnosis", "treatment": "medr_treatment"}


class MedrPrompts:
    """The template set a run uses; ``upstream`` reads the files from ``instructions_dir``."""

    def __init__(self, source: str = "ours", instructions_dir: Path | None = None) -> None:
        self.source = source
        self.instructions_dir = instructions_dir
        if source == "upstream":
            missing = [name for name in UPSTREAM_FILES.values() if not (instructions_dir / name).is_file()]
            if missing:
                raise FileNotFoundError(
                    f"{instructions_dir} lacks the upstream templates {', '.join(missing)}"
                )

    @functools.cache  # noqa: B019 - one instance per run; templates never change during it
    def text(self, name: str) -> str:
        if self.source == "upstream" and name in UPSTREAM_FILES:
            return (self.instructions_dir / UPSTREAM_FILES[name]).read_text(encoding="utf-8").strip()
        if self.source == "upstream" and name in UPSTREAM_INLINE:
            return UPSTREAM_INLINE[name]
        return template(name)

    def render(self, name: str, **fields: str) -> str:
        return self.text(name).format(**fields)

    def hashes(self) -> dict[str, str]:
        """sha256 of each upstream file in use (our own templates are hashed with the package's)."""
        if self.source != "upstream":
            return {}
        return {
            f"upstream:{file}": hashlib.sha256((self.instructions_dir / file).read_bytes()).hexdigest()
            for file in sorted(UPSTREAM_FILES.values())
        }

    def system(self) -> str:
        return self.text("medr_system")

    def judge_system(self, judge_template: str) -> str:
        """The judge's system message for one judging step (upstream gives each step its own)."""
        if self.source == "upstream":
            return UPSTREAM_JUDGE_SYSTEM[judge_template]
        return template("judge_system")

    def follow_up(self, additional_information: str, *, last_chance: bool) -> str:
        """A free-turn follow-up message, led by the last-turn notice before the final turn."""
        message = self.render("medr_free_turn_next", additional_information=additional_information)
        if not last_chance:
            return message
        return self.text("medr_free_turn_notice") + NOTICE_JOINER[self.source] + message

    def opening(self, template: str, case: str) -> list[dict[str, str]]:
        """A conversation's first two messages: the system role, then ``template`` filled with ``case``."""
        user = self.render(template, case=case.strip())
        return [{"role": "system", "content": self.system()}, {"role": "user", "content": user}]

    def single_turn_messages(self, setting: str, case_summary: str) -> list[dict[str, str]]:
        """The single-turn settings see the full case summary."""
        return self.opening(SINGLE_TURN_TEMPLATES[setting], case_summary)
