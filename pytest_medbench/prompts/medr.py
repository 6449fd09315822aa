"""MedR-Bench prompts for the single-turn settings (oracle diagnosis, treatment planning)."""

from __future__ import annotations

from .templates import template

SINGLE_TURN_TEMPLATES = {"oracle_diagnosis": "medr_oracle_diagnosis", "treatment": "medr_treatment"}


def single_turn_messages(setting: str, case_summary: str) -> list[dict[str, str]]:
    """System role plus the setting's template filled with the full case summary."""
    user = template(SINGLE_TURN_TEMPLATES[setting]).format(case=case_summary.strip())
    return [{"role": "system", "content": template("medr_system")}, {"role": "user", "content": user}]
