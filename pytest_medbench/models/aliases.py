"""Short model names (``--model claude-3-5``) resolved to litellm model ids.

The built-in table covers the families the two papers evaluate; ``[tool.medbench.models]`` in
pyproject.toml overrides or extends it. The leaderboard records both the name as written and the id.
"""

from __future__ import annotations

from .litellm_import import import_litellm

BUILTIN_ALIASES = {
    "claude-3-5": "anthropic/claude-3-5-sonnet-20241022",
    "claude-3-5-sonnet": "anthropic/claude-3-5-sonnet-20241022",
    "claude-3-7": "anthropic/claude-3-7-sonnet-20250219",
    "claude-sonnet-4": "anthropic/claude-sonnet-4-20250514",
    "claude-sonnet-4-5": "anthropic/claude-sonnet-4-5-20250929",
    "gpt-4": "openai/gpt-4",
    "gpt-4o": "openai/gpt-4o-2024-11-20",  # the MedR-Bench judge
    "gpt-4o-mini": "openai/gpt-4o-mini",
    "gpt-4.1": "openai/gpt-4.1",
    "o3-mini": "openai/o3-mini-2025-01-31",
    "o3": "openai/o3",
    "deepseek-r1": "deepseek/deepseek-reasoner",
    "deepseek-v3": "deepseek/deepseek-chat",
    "gemini-2.0-flash-thinking": "gemini/gemini-2.0-flash-thinking-exp-01-21",
    "gemini-2.5-pro": "gemini/gemini-2.5-pro",
}


class UnknownModel(ValueError):
    """A model name litellm cannot route; the message suggests the closest known names."""


def resolve(name: str, overrides: dict[str, str] | None = None) -> str:
    """The litellm id for ``name``: an alias from the table (overrides first), else ``name`` itself."""
    table = {**BUILTIN_ALIASES, **(overrides or {})}
    return table.get(name, name)


def check_routable(name: str, resolved: str, overrides: dict[str, str] | None = None) -> None:
    """Raise UnknownModel when litellm cannot tell which provider serves ``resolved``.

    Imports litellm, so call it only for names without a provider prefix.
    """
    litellm = import_litellm()
    try:
        litellm.get_llm_provider(resolved)
    except Exception:
        from rapidfuzz import process

        known = sorted({*BUILTIN_ALIASES, *(overrides or {})})
        close = [match for match, score, _ in process.extract(name, known, limit=3) if score >= 50]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownModel(
            f"litellm cannot route the model {name!r} (give a provider prefix such as openai/ or anthropic/, "
            f"or an alias){hint}"
        ) from None
