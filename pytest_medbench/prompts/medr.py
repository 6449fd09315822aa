"""MedR-Bench prompts: our own templates by default, or the upstream template files loaded at run time
from ``<data>/medrbench/instructions/`` (``--medbench-prompts upstream``; never shipped with us).

Both sets use the same placeholders, filled with ``str.format`` (the upstream files escape literal
braces as ``{{ }}``), so every caller renders a template by our name alone. The upstream set covers
the whole upstream protocol when the instructions folder also holds ``inline_messages.json``: the few
messages upstream's code writes inline (system lines, the agent's user message, the last-turn notice,
the factuality search follow-up, how an exam item is written out for matching). No upstream wording
is shipped here.
"""

from __future__ import annotations

import functools
import hashlib
import json
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
# The messages the upstream code writes as string literals rather than template files: read, like the
# templates, from the data directory at run time, from this optional JSON object. Its keys are our
# names ``medr_system``, ``medr_agent_user``, ``medr_free_turn_notice``, ``judge_factuality_search``,
# ``judge_exam_item`` (one requested exam item, written out for the match) and
# ``judge_system:<judge template>`` (each judging step's own system line); a key it lacks, or the
# whole file, falls back to our own wording, and ``hashes()`` records whether it was there.
UPSTREAM_INLINE_FILE = "inline_messages.json"
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

    @functools.cached_property
    def _inline(self) -> dict[str, str]:
        """The upstream inline messages the data directory supplies ({} without the file)."""
        if self.source != "upstream" or not (self.instructions_dir / UPSTREAM_INLINE_FILE).is_file():
            return {}
        path = self.instructions_dir / UPSTREAM_INLINE_FILE
        try:
            messages = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: invalid JSON: {exc}") from None
        if not isinstance(messages, dict) or not all(isinstance(v, str) for v in messages.values()):
            raise ValueError(f"{path}: not a JSON object of message texts")
        return messages

    @functools.cache  # noqa: B019 - one instance per run; templates never change during it
    def text(self, name: str) -> str:
        if self.source == "upstream" and name in UPSTREAM_FILES:
            return (self.instructions_dir / UPSTREAM_FILES[name]).read_text(encoding="utf-8").strip()
        return self._inline.get(name) or template(name)

    def render(self, name: str, **fields: str) -> str:
        return self.text(name).format(**fields)

    def hashes(self) -> dict[str, str]:
        """sha256 of each upstream file in use (our own templates are hashed with the package's)."""
        if self.source != "upstream":
            return {}
        files = sorted(UPSTREAM_FILES.values())
        if (self.instructions_dir / UPSTREAM_INLINE_FILE).is_file():
            files.append(UPSTREAM_INLINE_FILE)
        return {
            f"upstream:{file}": hashlib.sha256((self.instructions_dir / file).read_bytes()).hexdigest()
            for file in files
        }

    def system(self) -> str:
        return self.text("medr_system")

    def judge_system(self, judge_template: str) -> str:
        """The judge's system message for one judging step (upstream gives each step its own)."""
        return self._inline.get(f"judge_system:{judge_template}") or template("judge_system")

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
