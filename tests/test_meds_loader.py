"""The MedS-Bench loader: its plain-Python schema check agrees with the JSON Schema (a document it
passes is one jsonschema finds no fault with, and every well-formed task file takes that fast path);
one rule reads a file's task id; a task with no instances, and each broken file, is a data error of
its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_medbench.data.files import schema_error
from pytest_medbench.data.meds import _plainly_valid, load_meds
from pytest_medbench.data.meds_tasks import task_id_in

SCHEMA = "meds_task.schema.json"
anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)
good_output = st.text(max_size=5) | st.lists(st.text(max_size=5), min_size=1, max_size=3)
good_instance = st.fixed_dictionaries(
    {"input": st.text(max_size=5), "output": good_output},
    optional={"id": st.text(max_size=3) | st.integers()},
)
good_document = st.fixed_dictionaries(
    {
        "Definition": st.lists(st.text(max_size=5), min_size=1, max_size=2),
        "Instances": st.lists(good_instance, max_size=4),
    },
    optional={"Input_language": st.lists(st.text(max_size=3), max_size=2)},
)
bad_value = st.one_of(st.just([]), st.lists(anything, min_size=1, max_size=2), anything)  # [], [None], 3


@st.composite
def near_misses(draw) -> dict:
    """A well-formed document with one thing broken: a top-level field, or one field of one instance
    replaced by something else or removed."""
    document = draw(good_document)
    where = draw(st.sampled_from(["Definition", "Instances", "Output_language", "instance", "field"]))
    if where not in ("instance", "field"):
        document[where] = draw(bad_value)
        return document
    instances = [*document["Instances"], draw(good_instance)]
    index = draw(st.integers(0, len(instances) - 1))
    if where == "instance":
        instances[index] = draw(bad_value)
    else:
        broken, key = dict(instances[index]), draw(st.sampled_from(["input", "output", "id"]))
        if draw(st.integers(0, 2)) == 0:
            broken.pop(key, None)
        else:
            broken[key] = draw(bad_value)
        instances[index] = broken
    document["Instances"] = instances
    return document


@given(good_document)
def test_every_well_formed_task_file_takes_the_fast_path(document):
    assert schema_error(document, SCHEMA) is None
    assert _plainly_valid(document)


@settings(max_examples=400)  # each broken spot comes up about once in 30 examples
@given(near_misses())
def test_what_the_fast_check_passes_the_schema_passes(document):
    if _plainly_valid(document):
        assert schema_error(document, SCHEMA) is None


@given(anything)
def test_what_the_fast_check_passes_the_schema_passes_whatever_the_shape(document):
    if _plainly_valid(document):
        assert schema_error(document, SCHEMA) is None


# -- task ids, empty tasks and broken files --------------------------------------------------------

MCQA = {
    "Definition": ["Answer with the letter of the right option."],
    "Instances": [
        {
            "id": n,
            "input": f"Which is {n}?\nOptions: A: {n}\tB: {n + 1}",
            "output": f"The right answer is A: {n}",
        }
        for n in range(3)
    ],
}
YES_NO = {
    "Definition": ["Answer yes, no or maybe."],
    "Instances": [
        {"input": "Does rest ease a sprain?", "output": "yes"},
        {"input": "Is a cold caused by cold weather?", "output": "no"},
    ],
}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "task_id"),
    [
        ("task57_medqa_usmle.json", "task57"),
        ("task57-medqa.jsonl", "task57"),
        ("task123.json", "task123"),
        ("task1234_other.json", "task1234"),
        ("sepsis_triage.json", None),
        ("tasks57.json", None),
    ],
)
def test_one_rule_reads_a_files_task_id(name, task_id):
    assert task_id_in(name) == task_id


def test_tasks_named_without_an_underscore_ran_and_are_not_listed_absent(run_suites, tmp_path):
    folder = tmp_path / "data" / "meds-bench" / "MCQA"
    _write(folder / "task123.json", json.dumps(YES_NO))
    _write(folder / "task57-medqa.jsonl", json.dumps(MCQA))
    result, board = run_suites("--medbench-data", str(tmp_path / "data"), "--model", "medbench/oracle")
    assert result.ret == 0
    assert {task["task"]: task["n"] for task in board["tasks"]} == {"task123": 2, "task57": 3}
    absent = board["run"]["meds_tasks_absent"]
    assert "task57" not in absent and "task123" not in absent
    assert absent["task58"] == "not in the data directory"  # a task without a file is still listed


def test_a_task_with_no_instances_is_a_data_error_naming_the_file(tmp_path):
    empty = _write(
        tmp_path / "meds-bench" / "MCQA" / "task59_empty.json", json.dumps({**MCQA, "Instances": []})
    )
    _write(tmp_path / "meds-bench" / "MCQA" / "task57_ok.json", json.dumps(MCQA))
    tasks, errors = load_meds(tmp_path)
    assert [task.task_id for task in tasks] == ["task57"]
    assert [str(error) for error in errors] == [
        f"{empty} at /Instances: no instances: the task has nothing to evaluate"
    ]


def test_broken_files_that_share_a_stem_are_each_counted(run_suites, tmp_path):
    data = tmp_path / "data" / "meds-bench"
    for folder in ("MCQA", "NER"):
        _write(data / folder / "task57_medqa.json", '{"Definition": ["x"], "Instances": [')
    _write(data / "MCQA" / "task59_empty.json", json.dumps({**MCQA, "Instances": []}))
    _write(data / "MCQA" / "task123_ok.json", json.dumps(YES_NO))
    result, board = run_suites("--medbench-data", str(data.parent), "--model", "medbench/oracle")
    tasks = {task["task"]: task for task in board["tasks"]}
    assert (tasks["task57_medqa"]["n"], tasks["task57_medqa"]["errors"]) == (2, 2)
    assert (tasks["task59_empty"]["n"], tasks["task59_empty"]["errors"]) == (1, 1)
    assert "task59" not in board["run"]["meds_tasks_absent"]  # its file is there: a data error, not absent
    meds = {entry["benchmark"]: entry for entry in board["benchmarks"]}["meds"]
    assert meds["n"] == 2 + 3
    result.stdout.fnmatch_lines_random(
        [
            "FAILED *test_meds[[]meds-bench/MCQA/task57_medqa-load_error[]]*",
            "FAILED *test_meds[[]meds-bench/NER/task57_medqa-load_error[]]*",
            "FAILED *test_meds[[]task59_empty-load_error[]]*",
        ]
    )
