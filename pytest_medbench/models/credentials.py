"""Before any item runs: are the keys the hosted models need in the environment? litellm knows each
provider's variables (``validate_environment``), so a missing key stops the run once, by name,
instead of failing every item."""

from __future__ import annotations

from typing import Any

from .client import ModelSpec
from .litellm_import import import_litellm


def unset_key(settings: Any, model: ModelSpec, groups: dict) -> str | None:
    """What to say when the evaluated model or a judge (one without its own API base) needs a key
    that is not set; None when every key is there."""
    from ..options import split_judge

    hosted = [] if model.builtin or model.group is not None or model.api_base else [model]
    if not settings.judge_api_base:
        judges = [split_judge(text) for text in settings.judge_models]
        specs = [
            ModelSpec.parse(name, None, settings.model_aliases, groups) for name, url in judges if not url
        ]
        hosted += [spec for spec in specs if not spec.builtin and spec.group is None]
    for spec in hosted:
        if missing := missing_keys(spec.litellm_model):
            return f"medbench: {spec.name} needs {' or '.join(missing)} in the environment, and it is not set"
    return None


def missing_keys(litellm_model: str) -> list[str]:
    """The variables litellm says ``litellm_model`` needs when none of them is set; [] when fine."""
    litellm = import_litellm()
    try:
        found = litellm.validate_environment(model=litellm_model)
    except Exception:  # a provider litellm cannot check: its first call will say
        return []
    return [] if found.get("keys_in_environment") else list(found.get("missing_keys") or [])
