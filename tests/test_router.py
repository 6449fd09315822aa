"""--model-router: calls spread over replicas, a replica that dies mid-run costs no item."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from openai_server import OpenAIServer, Reply, echo_last_user

from conftest import mcqa_data
from pytest_medbench.models.router import RouterFileError, load_router

ITEMS = 60


def router_file(tmp_path: Path, *replicas: OpenAIServer) -> Path:
    """Two deployments of one model: the first over the lean path, the second through litellm."""
    models = ["openai/replica", "custom_openai/replica"]
    entries = "".join(
        f"  - model_name: replica\n"
        f"    litellm_params: {{model: {model}, api_base: '{server.api_base}', api_key: no-key}}\n"
        for model, server in zip(models, replicas, strict=True)
    )
    path = tmp_path / "router.yaml"
    path.write_text(f"model_list:\n{entries}router_settings:\n  cooldown_time: 60\n")
    return path


def slow(request: dict, number: int) -> Reply:
    time.sleep(0.02)
    return echo_last_user(request, number)


def answered(server: OpenAIServer) -> int:
    return len(server.requests)


@pytest.fixture
def run_routed(run_suites, tmp_path):
    """Runs ITEMS MCQA items, 4 at a time, against a router file over the given replicas."""

    def run(*replicas: OpenAIServer, options: tuple[str, ...] = ()):
        data, router = mcqa_data(tmp_path, ITEMS), router_file(tmp_path, *replicas)
        common = ["--medbench-shots=0", "--medbench-concurrency=4"]
        return run_suites(f"--medbench-data={data}", f"--model-router={router}", *common, *options)

    return run


def test_calls_are_spread_over_the_replicas(run_routed):
    with OpenAIServer(slow) as first, OpenAIServer(slow) as second:
        result, board = run_routed(first, second, options=("--model=replica",))
    assert board["tasks"][0]["n"] == ITEMS and board["tasks"][0]["errors"] == 0
    result.stdout.fnmatch_lines(
        ["medbench: model replica = router:replica over 2 deployments (*router.yaml)*"]
    )
    assert answered(first) + answered(second) == ITEMS
    assert 0.3 * ITEMS <= answered(first) <= 0.7 * ITEMS  # both replicas carry a fair share
    assert board["run"]["model"]["litellm_model"] == "router:replica"  # two ids: keyed by the group
    assert [d["api_base"] for d in board["run"]["model"]["deployments"]] == [first.api_base, second.api_base]


def test_a_replica_that_dies_mid_run_leaves_the_run_complete(run_routed):
    dead = threading.Event()
    survivor = OpenAIServer(slow)

    def dies_after_ten(request: dict, number: int) -> Reply:
        if number == 10:  # stop listening; requests on connections already open are dropped
            dead.set()
            threading.Thread(target=dying.__exit__, args=(None, None, None)).start()
        return Reply(drop=True) if dead.is_set() else slow(request, number)

    dying = OpenAIServer(dies_after_ten)
    with survivor, dying:  # no --model: the file's only group is the default
        _, board = run_routed(dying, survivor, options=("--medbench-retries=0",))
    assert dead.is_set()
    task = board["tasks"][0]
    assert (task["n"], task["errors"]) == (ITEMS, 0)  # no retries allowed: failover alone saved them
    assert task["metrics"]["accuracy"]["n"] == ITEMS
    assert answered(survivor) >= ITEMS - 9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model_list: [", "not valid YAML"),
        ("model_list: []", r"at /model_list: \[\] should be non-empty"),
        ("model_list:\n  - model_name: x\n    litellm_params: {api_base: http://h}\n", "at /model_list/0"),
        (
            "model_list:\n  - model_name: x\n"
            "    litellm_params: {model: openai/x, api_key: os.environ/NO_SUCH_KEY}\n",
            "NO_SUCH_KEY is not set",
        ),
    ],
    ids=["yaml", "empty", "no-model", "missing-env"],
)
def test_a_bad_router_file_names_the_file_and_the_place(tmp_path, text, message):
    path = tmp_path / "router.yaml"
    path.write_text(text)
    with pytest.raises(RouterFileError, match=message) as caught:
        load_router(path)
    assert str(path) in str(caught.value)


def test_model_must_name_a_group_of_the_router_file(run_suites, tmp_path):
    path = tmp_path / "router.yaml"
    path.write_text(
        "model_list:\n"
        "  - {model_name: small, litellm_params: {model: openai/s, api_base: 'http://127.0.0.1:9/v1'}}\n"
        "  - {model_name: large, litellm_params: {model: openai/l, api_base: 'http://127.0.0.1:9/v1'}}\n"
    )
    result, board = run_suites("--model-router", str(path), "--model", "medium")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and board is None
    result.stderr.fnmatch_lines(["*--model medium: not a model_name in*(it has: large, small)*"])


def test_a_failed_deployment_cools_down_then_gets_calls_again():
    from pytest_medbench.models.router import RouterGroup, RouterTransport
    from pytest_medbench.models.transport import Answer, APIConnectionError, Endpoint

    class Replica:
        def __init__(self) -> None:
            self.down, self.calls = False, 0

        def send(self, messages, params, timeout_s, context):
            self.calls += 1
            if self.down:
                raise APIConnectionError("connection refused")
            return Answer(text="ok")

    now = [0.0]
    group = RouterGroup("m", (Endpoint("openai/m", "http://a/v1"), Endpoint("openai/m", "http://b/v1")), 30.0)
    router = RouterTransport(group, clock=lambda: now[0])
    first, second = Replica(), Replica()
    router._deployments[0].transport, router._deployments[1].transport = first, second
    first.down = True
    answers = [router.send([], {}, 1.0, None).text for _ in range(6)]
    assert answers == ["ok"] * 6  # the failed call moved on to the second replica at once
    assert first.calls == 1 and second.calls == 6  # then the first was left alone while cooling
    first.down, now[0] = False, 31.0
    for _ in range(6):
        router.send([], {}, 1.0, None)
    assert first.calls >= 3  # cooled down: it takes its share again
