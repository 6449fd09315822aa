"""Metering: the model, judge and agent one item uses, each call's usage counted into its record."""

from __future__ import annotations

from typing import Any

from ..items.base import Services
from ..judge.agent import LLMAgent
from ..judge.jury import Jury
from ..judge.llm import LLMJudge
from ..judge.offline import OfflineAgent, OfflineJudge
from ..models.cache import ItemScope
from ..models.client import ModelClient
from ..report.records import ItemRecord, Usage
from .clients import Clients


def item_services(
    clients: Clients, record: ItemRecord, epoch: int, conversations: dict, unit: tuple[str, ...]
) -> Services:
    """The model, judge and agent for one item and epoch, metering usage into its record.

    In a scratch file, the model's and the agent's answers (the solve) are kept under ``unit``, the
    item's prefetch unit, so that the other setting of a MedR-Bench dialogue finds the dialogue on
    any worker; the judges' (the scoring) under the item alone."""
    payer = f"{clients.run_id} {'/'.join(record.key)}"
    solving = ItemScope(f"solve {'/'.join(unit)}") if clients.scratch else None
    scoring = ItemScope(f"score {'/'.join(record.key)}") if clients.scratch else None
    calls: list[tuple[str, Any]] = []

    def meter(kind: str, completion: Any, reused: bool = False) -> None:
        calls.append((kind, completion))
        usage = record.usage if kind == "model" else record.judge_usage
        _add_usage(usage, completion, payer, clients.run_id, reused)
        if kind == "model":
            record.finish_reason = completion.finish_reason
            record.truncated = record.truncated or completion.finish_reason == "length"
            record.no_content = completion.no_content or record.no_content

    def recount(logged: list[tuple[str, Any]]) -> None:
        for kind, completion in logged:
            meter(kind, completion, reused=True)

    def ask_model(messages: list[dict[str, str]], context: dict) -> Any:
        record.messages = list(messages)  # kept even when the call fails, for the samples file
        completion = clients.client.complete(
            messages, epoch=epoch, context=context, paid_by=payer, scope=solving
        )
        meter("model", completion)
        if not clients.model.builtin and (origin := completion.provenance()) not in record.provenance:
            record.provenance.append(origin)
        return completion

    def metered(client: ModelClient, scope: ItemScope | None) -> Any:
        def ask(messages: list[dict[str, str]]) -> str:
            completion = client.complete(messages, paid_by=payer, scope=scope)
            meter("judge", completion)  # the judge's and the agent's usage
            return completion.text

        return ask

    judges = [
        LLMJudge(metered(client, scoring), clients.prompts, clients.evidence)
        for client in clients.judge_clients
    ]
    judge = OfflineJudge() if not judges else judges[0] if len(judges) == 1 else Jury(judges)
    agent_client = clients.agent_client
    agent = LLMAgent(metered(agent_client, solving), clients.prompts) if agent_client else OfflineAgent()
    return Services(ask_model, judge, agent, clients.prompts, conversations, epoch, calls, recount)


def _add_usage(usage: Usage, completion: Any, payer: str, run_id: str, reused: bool) -> None:
    """A call made for this item in this run counts in full, even when another worker's prefetch
    made it and it is read here from the cache. An answer another item of this run was given (the
    conversation two MedR-Bench settings share: ``reused``, or read from the cache another worker
    filled) is reused, not called again; any other answer, from an earlier run, is a cache hit."""
    if reused or (completion.paid_by != payer and completion.run_id == run_id):
        usage.reused += 1
        return
    usage.calls += 1
    if completion.paid_by != payer:
        usage.cache_hits += 1
        return
    usage.prompt_tokens += completion.prompt_tokens
    usage.completion_tokens += completion.completion_tokens
    usage.cost_usd += completion.cost_usd
    usage.latency_s += completion.latency_s
