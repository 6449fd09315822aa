"""Prompts: MedS-Bench's two protocols (the ``code`` one in the released code's layout, meds-bench.md
section 5), seeded shots from the whole task file that never include the query's input, truncation,
``--medbench-limit`` leaving prompts alone; MedR-Bench's free-turn last-turn notice (medr-bench.md
section 4.4)."""

from __future__ import annotations

import json

import pytest

from conftest import FIXTURES
from pytest_medbench.data.meds import load_task
from pytest_medbench.items.meds import meds_items
from pytest_medbench.prompts import meds as meds_prompts
from pytest_medbench.prompts.medr import UPSTREAM_FILES, UPSTREAM_INLINE_FILE, MedrPrompts
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
    assert user["content"] == f"Input:\n{query.input}\nOutput:\n"
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
    assert messages[-1]["content"] == f"Input:\n{query.input}\nOutput:\n"
    tiny = meds_messages(MCQA, query, MedsPromptConfig(max_chars=10))
    assert tiny[-1]["content"] == f"Input:\n{query.input}\nOutput:\n"
    # every shot dropped: the system turn is the definition and the sentence for no shots
    assert tiny[0]["content"] == MCQA.definition + NO_SHOTS_SENTENCE


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


# -- the code protocol's layout (meds-bench.md section 5, "The code builds the prompt as follows") ---

# our own instruction sentences (the released code's sentence is not ours to ship): one that points at
# the shots, and one for a prompt without any, which must not mention examples
SHOTS_SENTENCE = (
    "Answer the new input the same way the worked examples above are answered, in the same format."
)
NO_SHOTS_SENTENCE = "Answer the new input in the form the task above asks for."


def _task(tmp_path, instances: list[tuple[str, str]], definition: str = "Pick the answer.", name="task57_t"):
    path = tmp_path / f"{name}.json"
    document = {"Definition": [definition], "Instances": [{"input": i, "output": o} for i, o in instances]}
    path.write_text(json.dumps(document), encoding="utf-8")
    return load_task(path)


def test_code_protocol_follows_the_released_layout(tmp_path, monkeypatch):
    task = _task(tmp_path, [("Which is A?", "A"), ("Which is B?", "B"), ("Which is C?", "C")])
    query, b, c = task.instances
    monkeypatch.setattr(meds_prompts, "draw_shots", lambda *args: [c, b])
    system, user = meds_messages(task, query, MedsPromptConfig(protocol="code"))
    # 1. each shot "Input:\n{input}\n\nOutput:\n{output}\n"; 2. joined with "\n\n"; 3. "\n\n", the
    # definition, and the sentence with no space before it. User: "Input:\n{input}\nOutput:\n".
    shot_c = "Input:\nWhich is C?\n\nOutput:\nC\n"
    shot_b = "Input:\nWhich is B?\n\nOutput:\nB\n"
    assert system == {
        "role": "system",
        "content": shot_c + "\n\n" + shot_b + "\n\n" + "Pick the answer." + SHOTS_SENTENCE,
    }
    assert user == {"role": "user", "content": "Input:\nWhich is A?\nOutput:\n"}


def test_code_protocol_without_shots_mentions_none(tmp_path):
    task = _task(tmp_path, [("Which is A?", "A"), ("Which is B?", "B")])
    system, user = meds_messages(task, task.instances[0], MedsPromptConfig(protocol="code", shots=0))
    assert system == {"role": "system", "content": "Pick the answer." + NO_SHOTS_SENTENCE}
    assert "example" not in system["content"] and "above are answered" not in system["content"]
    assert user == {"role": "user", "content": "Input:\nWhich is A?\nOutput:\n"}


# -- the query's own input is never a shot -----------------------------------------------------------


def test_a_query_whose_input_repeats_never_gets_it_as_a_shot(tmp_path):
    """Exclusion is by the input text, not the position (MedS-Bench task files repeat inputs)."""
    pairs = [("Statement: same", "gold same")] * 2 + [
        (f"Statement: other {n}", f"gold {n}") for n in range(4)
    ]
    pairs.append(("Statement: same", "gold same, third copy"))
    task = _task(tmp_path, pairs, name="task100_dup")
    for query in task.instances:
        for seed in range(25):
            shots = draw_shots(task, query, 3, seed)
            assert len(shots) == 3 and all(shot.input != query.input for shot in shots), (query, seed)
            assert len({shot.index for shot in shots}) == 3
    # 4 instances with other inputs: asking for more than there are gives them all, never the twins
    same = task.instances[0]
    assert sorted(shot.index for shot in draw_shots(task, same, 6, seed=0)) == [2, 3, 4, 5]
    only_twins = _task(tmp_path, [("Q", "A"), ("Q", "A")], name="task100_twins")
    assert draw_shots(only_twins, only_twins.instances[1], 3, seed=0) == []


# -- --medbench-limit picks the items; it never changes their prompts -----------------------------------


def test_the_limit_picks_the_first_items_of_each_task_and_keeps_their_whole_task():
    """Which items a limit keeps; that their prompts are an unlimited run's is checked end to end
    below (the same Task object here would make that comparison hold whatever the code did)."""
    config = MedsPromptConfig(protocol="code")
    for limit in (1, 2):
        kept = list(meds_items([MCQA, NER], config, "official", limit=limit))
        assert [item.instance for item in kept] == [*MCQA.instances[:limit], *NER.instances[:limit]]
        assert [len(item.task_data.instances) for item in kept] == [len(MCQA.instances)] * limit + [
            len(NER.instances)
        ] * limit


def test_a_limited_run_sends_each_item_the_prompt_of_an_unlimited_one(run_suites, tmp_path):
    """Query 0 of a 2-instance task has one possible shot, instance 1, with or without
    ``--medbench-limit 1`` (which once cut the task file first and left no shot to draw)."""
    data = tmp_path / "data"
    (data / "meds-bench" / "MCQA").mkdir(parents=True)
    document = {
        "Definition": ["Pick the answer."],
        "Instances": [{"input": "Which is A?", "output": "A"}, {"input": "Which is B?", "output": "B"}],
    }
    (data / "meds-bench" / "MCQA" / "task57_two.json").write_text(json.dumps(document), encoding="utf-8")
    expected = [
        {
            "role": "system",
            "content": "Input:\nWhich is B?\n\nOutput:\nB\n" + "\n\n" + "Pick the answer." + SHOTS_SENTENCE,
        },
        {"role": "user", "content": "Input:\nWhich is A?\nOutput:\n"},
    ]
    for limit in ([], ["--medbench-limit", "1"]):
        samples = tmp_path / f"samples{len(limit)}.jsonl"
        result, board = run_suites(
            "--medbench-data", str(data), "--model", "medbench/oracle", "-m", "meds",
            "--medbench-samples", str(samples), *limit,
        )  # fmt: skip
        lines = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]
        assert result.ret == 0
        assert [line["id"] for line in lines] == (["0"] if limit else ["0", "1"])
        assert lines[0]["messages"] == expected
        (task,) = board["tasks"]
        assert task["audit"]["instances"] == len(lines)  # the audit counts the items the run evaluated


# -- MedR-Bench free-turn: the notice before the last model turn (medr-bench.md section 4.4) ----------

# our wording of upstream's message: in the next turn the model cannot ask for more information and
# must give its final diagnosis
NOTICE = (
    "Your next answer is your last: you can no longer ask for more information or tests, "
    "and it must give your final diagnosis."
)
OUR_NEXT = (
    "Here is the information you asked for:\n\nCBC normal\n\n"
    "Continue in the same layout: Chain of Thought, Additional Information Required, Conclusion."
)


def test_the_turn_before_the_last_is_told_its_next_answer_is_final():
    prompts = MedrPrompts()
    assert prompts.follow_up("CBC normal", last_chance=False) == OUR_NEXT
    assert prompts.follow_up("CBC normal", last_chance=True) == NOTICE + "\n\n" + OUR_NEXT


def _upstream_dir(tmp_path, inline: dict | None):
    """Stand-in upstream files (ours, not upstream's wording) with the placeholders the code fills."""
    folder = tmp_path / "instructions"
    folder.mkdir()
    for name in UPSTREAM_FILES.values():
        (folder / name).write_text(f"STAND-IN {name}\n", encoding="utf-8")
    next_turn = UPSTREAM_FILES["medr_free_turn_next"]
    (folder / next_turn).write_text("NEXT TURN:\n{additional_information}\n", encoding="utf-8")
    if inline is not None:
        (folder / UPSTREAM_INLINE_FILE).write_text(json.dumps(inline), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("inline", "notice"),
    [
        (None, NOTICE),
        ({"medr_system": "S"}, NOTICE),
        ({"medr_free_turn_notice": "THE FILE'S LINE"}, "THE FILE'S LINE"),
    ],
    ids=["no-inline-file", "inline-file-without-the-key", "inline-file-with-the-key"],
)
def test_upstream_prompts_take_the_notice_from_the_data_directory_or_else_ours(tmp_path, inline, notice):
    prompts = MedrPrompts("upstream", _upstream_dir(tmp_path, inline))
    assert prompts.follow_up("CBC normal", last_chance=False) == "NEXT TURN:\nCBC normal"
    # upstream joins the notice to the message with one newline
    assert prompts.follow_up("CBC normal", last_chance=True) == notice + "\n" + "NEXT TURN:\nCBC normal"
