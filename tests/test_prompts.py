"""MedS-Bench prompts: the two protocols, seeded shots that never include the query, truncation."""

from __future__ import annotations

import json

from conftest import FIXTURES
from pytest_medbench.data.meds import load_task
from pytest_medbench.prompts.meds import MedsPromptConfig, draw_shots, meds_messages

MCQA = load_task(FIXTURES / "meds-bench" / "MCQA" / "task57_medqa_usmle.jsonl")
NER = load_task(FIXTURES / "meds-bench" / "NER" / "task125_bc4chemd.json")


def test_shots_never_include_the_query_and_are_reproducible():
    for query in MCQA.instances:
        shots = draw_shots(MCQA, query, 3, seed=0)
        assert len(shots) == 3 and query not in shots
        assert shots == draw_shots(MCQA, query, 3, seed=0)
    assert any(draw_shots(MCQA, q, 3, 0) != draw_shots(MCQA, q, 3, 1) for q in MCQA.instances)


def test_code_protocol_puts_three_shots_in_the_system_turn():
    query = MCQA.instances[0]
    system, user = meds_messages(MCQA, query, MedsPromptConfig(protocol="code"))
    assert system["role"] == "system" and user["role"] == "user"
    assert system["content"].count("Input:\n") == 3 and MCQA.definition in system["content"]
    assert user["content"] == f"Input:\n{query.input}\nOutput:"
    assert query.input not in system["content"]


def test_paper_protocol_is_zero_shot_for_mcqa_and_three_shot_elsewhere():
    (mcqa_user,) = meds_messages(MCQA, MCQA.instances[0], MedsPromptConfig(protocol="paper"))
    assert "Case1:" not in mcqa_user["content"] and MCQA.instances[0].input in mcqa_user["content"]
    (ner_user,) = meds_messages(NER, NER.instances[0], MedsPromptConfig(protocol="paper"))
    assert all(f"Case{n}:" in ner_user["content"] for n in (1, 2, 3))
    (one_shot,) = meds_messages(NER, NER.instances[0], MedsPromptConfig(protocol="paper", shots=1))
    assert "Case1:" in one_shot["content"] and "Case2:" not in one_shot["content"]


def test_long_prompts_drop_shots_but_never_cut_the_query():
    query = MCQA.instances[0]
    messages = meds_messages(MCQA, query, MedsPromptConfig(max_chars=len(query.input) + 400))
    assert messages[0]["content"].count("Input:\n") < 3
    assert messages[-1]["content"] == f"Input:\n{query.input}\nOutput:"
    tiny = meds_messages(MCQA, query, MedsPromptConfig(max_chars=10))
    assert tiny[-1]["content"] == f"Input:\n{query.input}\nOutput:"


def test_list_outputs_use_the_first_element_and_ids_fall_back_to_the_index(tmp_path):
    path = tmp_path / "task12_pubmedqa_verification.json"
    path.write_text(
        json.dumps(
            {
                "Definition": ["d"],
                "Instances": [
                    {"input": "a", "output": ["no", "n"]},
                    {"id": "x-7", "input": "b", "output": "yes"},
                ],
            }
        )
    )
    task = load_task(path)
    assert [(i.id, i.reference) for i in task.instances] == [("0", "no"), ("x-7", "yes")]
    assert task.category == "fact_verification"
