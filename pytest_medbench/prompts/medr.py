"""MedR-Bench prompts: our own templates by default, or the upstream template files loaded at run time
from ``<data>/medrbench/instructions/`` (``--medbench-prompts upstream``; never shipped with us).

Both sets use the same placeholders, filled with ``str.format`` (the upstream files escape literal
braces as ``{{ }}``), so every caller renders a template by our name alone.
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
        return template("medr_system")

    def opening(self, template: str, case: str) -> list[dict[str, str]]:
        """A conversation's first two messages: our system role, then ``template`` filled with ``case``."""
        user = self.render(template, case=case.strip())
        return [{"role": "system", "content": self.system()}, {"role": "user", "content": user}]

    def single_turn_messages(self, setting: str, case_summary: str) -> list[dict[str, str]]:
        """The single-turn settings see the full case summary."""
        return self.opening(SINGLE_TURN_TEMPLATES[setting], case_summary)
