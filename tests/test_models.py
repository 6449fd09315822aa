"""The model layer against a real OpenAI-compatible server on 127.0.0.1: retries, fail-fast, cache.

Each test runs over both transports (the lean HTTP path and litellm): they must behave alike.
"""

from __future__ import annotations

import hashlib
import time

import pytest
from openai_server import CONTENT_FILTERED, OpenAIServer, Reply, echo_last_user

from pytest_medbench.models.cache import ResponseCache, cache_key
from pytest_medbench.models.client import (
    GenerationParams,
    ModelClient,
    ModelSpec,
    RetryAfterCapped,
    RetryPolicy,
)
from pytest_medbench.models.errors import ModelCallError
from pytest_medbench.models.transport import Endpoint, HTTPTransport, LitellmTransport

MESSAGES = [{"role": "user", "content": "What causes scurvy?"}]


@pytest.fixture(params=["lean", "lean-http-process", "litellm"])
def client_for(request):
    """Makes clients for a server's ``openai/test-model``, over the lean HTTP path (its calls in the
    calling thread, or in the HTTP process) or litellm's."""

    def make(server: OpenAIServer, cache: ResponseCache | None = None, sleeps=None, **params) -> ModelClient:
        client = ModelClient(
            ModelSpec.parse("openai/test-model", server.api_base),
            GenerationParams(**params),
            cache=cache,
            timeout_s=5,
            retry=RetryPolicy(max_retries=3),
            sleep=(sleeps if sleeps is not None else []).append,
        )
        assert isinstance(client.transport, HTTPTransport)  # OpenAI-compatible endpoint: the lean path
        if request.param == "litellm":
            client.transport = LitellmTransport(Endpoint("openai/test-model", server.api_base))
        if request.param == "lean-http-process":
            endpoint = Endpoint("openai/test-model", server.api_base)
            client.transport = HTTPTransport(endpoint, in_own_process=True)
        return client

    return make


def test_429_is_retried_honouring_retry_after(client_for):
    def responder(request, number):
        if number == 1:
            return Reply(status=429, content="slow down", headers={"Retry-After": "7"})
        return echo_last_user(request, number)

    sleeps: list[float] = []
    with OpenAIServer(responder) as server:
        completion = client_for(server, sleeps=sleeps).complete(MESSAGES)
    assert completion.text == "echo: What causes scurvy?"
    assert len(server.requests) == 2
    assert sleeps == [7.0]
    assert (completion.prompt_tokens, completion.completion_tokens) == (11, 7)


def test_server_errors_are_retried_a_bounded_number_of_times(client_for):
    with OpenAIServer(lambda request, number: Reply(status=503, content="busy")) as server:
        client = client_for(server)
        with pytest.raises(ModelCallError) as caught:
            client.complete(MESSAGES)
    assert caught.value.kind == "server"
    assert len(server.requests) == 4  # one try and three retries


def test_authentication_error_fails_fast_and_stops_further_calls(client_for, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-sentinel-0123456789")
    with OpenAIServer(
        lambda r, n: Reply(status=401, content="bad key sk-test-sentinel-0123456789")
    ) as server:
        client = client_for(server)
        with pytest.raises(ModelCallError) as first:
            client.complete(MESSAGES)
        with pytest.raises(ModelCallError):
            client.complete([{"role": "user", "content": "another question"}])
    assert first.value.kind == "auth"
    assert "sk-test-sentinel" not in str(first.value)
    assert len(server.requests) == 1


def test_answers_are_cached_on_what_changes_them_and_errors_are_not(client_for, tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite3")
    failing = {"on": True}

    def responder(request, number):
        if failing["on"]:
            return Reply(status=500, content="boom")
        return echo_last_user(request, number)

    with OpenAIServer(responder) as server:
        with pytest.raises(ModelCallError):
            client_for(server, cache).complete(MESSAGES)
        assert len(cache) == 0
        failing["on"] = False
        first = client_for(server, cache, temperature=0).complete(MESSAGES)
        again = client_for(server, cache, temperature=0).complete(MESSAGES)
        asked = len(server.requests)
        other_temperature = client_for(server, cache, temperature=1).complete(MESSAGES)
        other_epoch = client_for(server, cache, temperature=0).complete(MESSAGES, epoch=1)
    assert not first.cached and again.cached and again.text == first.text
    assert not other_temperature.cached and not other_epoch.cached
    assert len(server.requests) == asked + 2


def test_timeout_is_not_part_of_the_cache_key(client_for, tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite3")
    with OpenAIServer() as server:
        client_for(server, cache).complete(MESSAGES)
        patient = client_for(server, cache)
        patient.timeout_s = 500
        assert patient.complete(MESSAGES).cached
    assert len(server.requests) == 1


def test_a_lone_surrogate_in_the_request_is_sent_and_answered_on_every_path(client_for, tmp_path):
    """A data file's broken escape in the prompt goes as U+FFFD on every path: litellm's client
    cannot send it (UTF-8 JSON: a server error, retried), and strict servers refuse its escape."""
    cache = ResponseCache(tmp_path / "cache.sqlite3")
    with OpenAIServer(lambda request, number: Reply(content="ok")) as server:
        answer = client_for(server, cache).complete([{"role": "user", "content": "Q\ud800?"}])
    assert (answer.text, len(server.requests)) == ("ok", 1)
    assert server.requests[0]["messages"][-1]["content"] == "Q\ufffd?"


def test_the_cache_key_is_the_sha256_of_the_requests_canonical_utf8_json():
    """Keys stay those of every cache written before (non-ASCII text as UTF-8, keys sorted, no
    spaces); only a lone surrogate, which UTF-8 cannot carry, is hashed as its JSON escape."""
    text = '{"epoch":0,"messages":[{"content":"甲亢?","role":"user"}],"model":"openai/m","params":{}}'
    messages = [{"role": "user", "content": "甲亢?"}]
    request = {"model": "openai/m", "params": {}, "messages": messages, "epoch": 0}
    assert cache_key(request) == hashlib.sha256(text.encode("utf-8")).hexdigest()
    broken = {**request, "messages": [{"role": "user", "content": "\ud800?"}]}
    escaped = text.replace("甲亢", "\\ud800").encode("ascii")
    assert cache_key(broken) == hashlib.sha256(escaped).hexdigest()


def test_builtin_models_take_the_litellm_path_and_skip_the_cache(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite3")
    client = ModelClient(
        ModelSpec.parse("medbench/oracle"), GenerationParams(), cache=cache, timeout_s=5, retry=RetryPolicy()
    )
    assert (
        client.complete(MESSAGES, context={"reference": "Vitamin C deficiency"}).text
        == "Vitamin C deficiency"
    )
    assert len(cache) == 0


@pytest.mark.parametrize(
    ("reply", "kind", "retried"),
    [
        (Reply(hang_s=2), "timeout", True),
        (Reply(drop=True), "connection", True),
        (Reply(raw=b'{"choices": [tru'), "server", True),
        (Reply(content="", finish_reason="content_filter"), "content_filter", False),
        (Reply(status=404, content="no such model"), "not_found", False),
        (Reply(status=400, body=CONTENT_FILTERED), "content_filter", False),
        (Reply(status=429, body={"error": {"message": "You exceeded your current quota"}}), "quota", False),
    ],
    ids=["hang", "drop", "malformed-json", "filtered", "404", "policy-400", "quota-429"],
)
def test_faults_are_classified_alike_on_both_paths(client_for, reply, kind, retried):
    with OpenAIServer(lambda request, number: reply) as server:
        client = client_for(server)
        # a short timeout only where the fault is a hang: elsewhere a loaded machine's slow first
        # litellm call must not time out and be retried (which would count 2 requests for 1)
        client.timeout_s = 0.5 if reply.hang_s else 10
        with pytest.raises(ModelCallError) as caught:
            client.complete(MESSAGES)
        # a loaded machine's server may record the last attempt after the client has given up on it
        deadline = time.monotonic() + 5
        while len(server.requests) < (4 if retried else 1) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert caught.value.kind == kind
    assert len(server.requests) == (4 if retried else 1)


def test_an_empty_answer_after_its_retries_is_the_answer_and_is_cached(client_for, tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite3")
    with OpenAIServer(lambda request, number: Reply(content=" \n")) as server:
        completion = client_for(server, cache).complete(MESSAGES)
        assert completion.text == " \n" and not completion.cached
        assert len(server.requests) == 4  # retried first: an empty answer is usually transient
        assert client_for(server, cache).complete(MESSAGES).cached  # a rerun scores the same answer
    assert len(server.requests) == 4


def test_an_answer_after_an_empty_one_is_taken(client_for):
    replies = [Reply(content=""), Reply(content="The right answer is A")]
    with OpenAIServer(lambda request, number: replies[min(number - 1, 1)]) as server:
        assert client_for(server).complete(MESSAGES).text == "The right answer is A"
    assert len(server.requests) == 2


def test_only_a_directly_reached_openai_compatible_endpoint_takes_the_lean_path(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert Endpoint("hosted_vllm/llama", "http://gpu1:8000/v1").lean
    assert not Endpoint("openai/gpt-4o").lean  # no address: litellm knows where OpenAI is
    assert not Endpoint("anthropic/claude-3-5-sonnet-20241022", "http://proxy:4000").lean
    monkeypatch.setenv("http_proxy", "http://corporate-proxy:3128")
    assert not Endpoint("openai/llama", "http://gpu1:8000/v1").lean  # litellm honours the proxy
    monkeypatch.setenv("no_proxy", "gpu1")
    assert Endpoint("openai/llama", "http://gpu1:8000/v1").lean


def test_a_403_is_that_items_error_and_later_calls_still_go_out(client_for):
    def gateway(request, number):
        if "blocked" in request["messages"][-1]["content"]:
            return Reply(status=403, content="blocked by the gateway's policy")
        return echo_last_user(request, number)

    with OpenAIServer(gateway) as server:
        client = client_for(server)
        with pytest.raises(ModelCallError) as caught:
            client.complete([{"role": "user", "content": "a blocked question"}])
        assert client.complete(MESSAGES).text == "echo: What causes scurvy?"
    assert caught.value.kind == "forbidden" and not caught.value.fatal
    assert len(server.requests) == 2  # not retried, and the next item was still sent


def test_the_timeout_bounds_the_whole_call_even_when_the_body_trickles(client_for):
    """Each byte arrives well within the timeout; the whole answer does not."""
    with OpenAIServer(lambda request, number: Reply(trickle_s=0.05)) as server:
        client = client_for(server)
        client.timeout_s, client.retry = 1.0, RetryPolicy(max_retries=0)
        started = time.perf_counter()
        with pytest.raises(ModelCallError) as caught:
            client.complete(MESSAGES)
    assert caught.value.kind == "timeout"
    assert time.perf_counter() - started < 2.0  # the body alone would take ~8 s


TOOL_CALL = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}


def _chat(choices: list) -> dict:
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "test-model", "choices": choices}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            {"error": {"message": "upstream overloaded", "type": "server_error"}},
            "error body: upstream overloaded",
        ),
        (_chat([]), "a 200 with no choices"),
        (
            _chat(
                [
                    {
                        "index": 0,
                        "finish_reason": "tool_calls",
                        "message": {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
                    }
                ]
            ),
            "content null (finish_reason tool_calls, tool calls returned)",
        ),
    ],
    ids=["error-body", "no-choices", "null-content-tool-calls"],
)
def test_a_200_with_no_answer_is_no_content_alike_on_both_paths(client_for, body, detail):
    """Retried like an empty answer; once the retries are spent it is the model's empty answer (scored,
    never dropped), and the completion says why it was empty."""
    with OpenAIServer(lambda request, number: Reply(body=body)) as server:
        completion = client_for(server).complete(MESSAGES)
    assert completion.text == "" and completion.no_content is not None and detail in completion.no_content
    assert len(server.requests) == 4  # one try and three retries


def test_a_retry_after_beyond_the_cap_is_said_once(client_for):
    def responder(request, number):
        if number <= 2:
            return Reply(status=429, content="come back in an hour", headers={"Retry-After": "3600"})
        return echo_last_user(request, number)

    sleeps: list[float] = []
    with OpenAIServer(responder) as server, pytest.warns(RetryAfterCapped, match="3600 s") as said:
        assert client_for(server, sleeps=sleeps).complete(MESSAGES).text == "echo: What causes scurvy?"
    assert sleeps == [120.0, 120.0] and len([w for w in said if w.category is RetryAfterCapped]) == 1


@pytest.mark.parametrize("size", [1, 100_000], ids=["small", "100kB"])
def test_an_answer_whose_server_closes_the_connection_is_read_whole_on_every_path(client_for, size):
    """``Connection: close`` after a 200: the body is read to its end before the socket closes
    (the inline path closed it first: every attempt a connection error, Errno 9)."""
    text = "B" * size
    reply = Reply(content=text, headers={"Connection": "close"})
    with OpenAIServer(lambda request, number: reply) as server:
        client = client_for(server)
        first, second = client.complete(MESSAGES), client.complete([{"role": "user", "content": "again"}])
    assert (first.text, second.text) == (text, text)
    assert len(server.requests) == 2  # none retried; the second call on a new connection


@pytest.mark.parametrize("value", ["soon", "10s"])
def test_a_retry_after_that_is_neither_seconds_nor_a_date_is_retried_with_the_normal_backoff(
    client_for, value
):
    """Python 3.10+ raises on such a date: the item was a harness error after one request."""

    def responder(request, number):
        if number == 1:
            return Reply(status=429, content="slow down", headers={"Retry-After": value})
        return echo_last_user(request, number)

    sleeps: list[float] = []
    with OpenAIServer(responder) as server:
        completion = client_for(server, sleeps=sleeps).complete(MESSAGES)
    assert completion.text == "echo: What causes scurvy?" and len(server.requests) == 2
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 1.0  # the first backoff: 1 s, jittered down to half


def _answer(content, finish_reason="stop", usage=None) -> dict:
    body = _chat(
        [{"index": 0, "finish_reason": finish_reason, "message": {"role": "assistant", "content": content}}]
    )
    return body if usage is None else {**body, "usage": usage}


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (Reply(body=_answer([{"type": "text", "text": "B"}])), "server"),
        (Reply(body=_answer(5)), "server"),
        (Reply(body={"choices": [{"message": "B", "finish_reason": "stop"}]}), "server"),
        (Reply(body={"id": "x", "object": "chat.completion", "created": 0, "model": "m"}), "server"),
        (Reply(status=408, content="request timeout"), "timeout"),
        (Reply(status=504, content="gateway timeout"), "timeout"),
    ],
    ids=["content-list", "content-int", "message-str", "no-choices-key", "408", "504"],
)
def test_malformed_answers_and_gateway_timeouts_are_classified_as_litellm_does(client_for, reply, kind):
    """litellm's kinds on every path: a 200 that is not a chat completion is a server error, 408 and
    504 are timeouts; all retried (the lean path had them `other`, not retried, or an empty answer)."""
    with OpenAIServer(lambda request, number: reply) as server:
        client = client_for(server)
        client.timeout_s = 10
        with pytest.raises(ModelCallError) as caught:
            client.complete(MESSAGES)
    assert caught.value.kind == kind
    assert len(server.requests) == 4  # one try and three retries


USAGE = {"prompt_tokens": 5, "completion_tokens": 100, "total_tokens": 105}


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": -11, "completion_tokens": -7},
        pytest.param({"prompt_tokens": 11.5, "completion_tokens": "7"}, id="fractional-and-string"),
    ],
    ids=["negative", "fractional-and-string"],
)
def test_usage_that_is_not_a_count_is_taken_as_absent_and_the_answer_kept(client_for, request, usage):
    """A negative count failed the leaderboard's schema at session end; a string lost the item. On
    litellm's path a fractional count is refused by litellm itself: a server error, retried (the
    documented difference, docs/reliability.md)."""
    refused_by_litellm = "fractional" in request.node.callspec.id and "litellm" in request.node.callspec.id
    with OpenAIServer(lambda r, n: Reply(body=_answer("B", usage=usage))) as server:
        if refused_by_litellm:
            with pytest.raises(ModelCallError) as caught:
                client_for(server).complete(MESSAGES)
            assert caught.value.kind == "server"
            return
        completion = client_for(server).complete(MESSAGES)
    assert (completion.text, completion.prompt_tokens, completion.completion_tokens) == ("B", 0, 0)
    assert completion.cost_usd == 0.0 and len(server.requests) == 1


@pytest.mark.parametrize(
    ("replies", "text"),
    [
        ([_answer("", usage=USAGE), _answer(" ", usage=USAGE), _answer("B", usage=USAGE)], "B"),
        ([_answer(None, finish_reason="length", usage=USAGE)] * 4, ""),
    ],
    ids=["empty-empty-answer", "null-content-length"],
)
def test_every_attempts_tokens_are_counted_and_fed_to_the_rate_limit(client_for, tmp_path, replies, text):
    """README: tokens and cost_usd are what this run spent. Hand count: each request 5 prompt and 100
    completion tokens; the retried empty answers' were dropped, and content null carried none."""
    from pytest_medbench.models.ratelimit import SharedRateLimit

    with OpenAIServer(lambda request, number: Reply(body=replies[number - 1])) as server:
        client = client_for(server)
        client.limit = SharedRateLimit(tmp_path / "limit.sqlite3", tpm=1_000_000)
        completion = client.complete(MESSAGES)
        limited = client.limit._db.execute("SELECT COUNT(*), SUM(tokens) FROM calls").fetchone()
    n = len(replies)
    assert completion.text == text and len(server.requests) == n
    assert (completion.prompt_tokens, completion.completion_tokens) == (5 * n, 100 * n)
    assert limited == (n, 105 * n)


def test_the_cache_masks_a_key_a_providers_body_echoes_and_keeps_the_answer_as_given(
    client_for, tmp_path, monkeypatch
):
    """A 200 whose error body echoes the key: the message stored for it is masked (docs/reliability.md:
    keys are never in the cache). The model's own answer is stored as given, so that a rerun scores
    what the first run scored: masking it turned "Dose 1234 mg" into "Dose *** mg" on a rerun when
    a URL's password was 1234, and a latency of 0.1234 into 0.***, an entry no run could read."""
    from pytest_medbench.models import secrets

    key = "sk-test-echoed-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setattr(secrets, "_registered", set())  # this test's password only, and only here
    secrets.register_url("http://admin:1234@127.0.0.1:9/v1")
    cache = ResponseCache(tmp_path / "cache.sqlite3")
    replies = {"answer": _answer("B. Dose 1234 mg"), "error": {"error": {"message": f"key {key} denied"}}}
    with OpenAIServer(
        lambda request, number: Reply(body=replies[request["messages"][-1]["content"]])
    ) as server:
        client = client_for(server, cache)
        client.retry = RetryPolicy(max_retries=0)
        first = [client.complete([{"role": "user", "content": question}]) for question in replies]
        again = [client.complete([{"role": "user", "content": question}]) for question in replies]
    cache.close()
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("cache.sqlite3*"))
    assert len(server.requests) == 2 and b"sk-test-echoed" not in stored  # the second round: the cache
    assert [c.text for c in again] == [c.text for c in first] == ["B. Dose 1234 mg", ""]


def test_cached_prompt_tokens_are_priced_alike_on_both_paths():
    """openai/gpt-4o from litellm's price map: 200 prompt tokens at 2.5e-6, 800 cached at 1.25e-6,
    500 completion at 1e-5: 0.0065 (the lean path charged the cached ones in full: 0.0075)."""
    usage = {"prompt_tokens": 1000, "completion_tokens": 500, "prompt_tokens_details": {"cached_tokens": 800}}
    with OpenAIServer(lambda request, number: Reply(body=_answer("B", usage=usage))) as server:
        endpoint = Endpoint("openai/gpt-4o", server.api_base)
        costs = [
            t.send(MESSAGES, {}, 10, None).cost_usd
            for t in (HTTPTransport(endpoint), LitellmTransport(endpoint))
        ]
    assert costs == [pytest.approx(0.0065), pytest.approx(0.0065)]
