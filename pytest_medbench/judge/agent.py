"""The patient agent played by a model: it alone holds the hidden ancillary results and serves them."""

from __future__ import annotations

from collections.abc import Callable

from ..prompts.medr import MedrPrompts


class LLMAgent:
    """Stateless: one [system, user] call per request; it never sees the dialogue or the answer."""

    def __init__(self, ask: Callable[[list[dict[str, str]]], str], prompts: MedrPrompts) -> None:
        self._ask = ask
        self._prompts = prompts

    def reply(self, request: str, case: str, ancillary: str) -> str:
        system = self._prompts.render("medr_agent_system", case=case, ancillary_test_results=ancillary)
        user = self._prompts.render("medr_agent_user", request=request)
        return self._ask([{"role": "system", "content": system}, {"role": "user", "content": user}])
