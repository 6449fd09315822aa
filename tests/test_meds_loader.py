"""The MedS-Bench loader's plain-Python schema check must agree with the JSON Schema: a document it
passes is one jsonschema finds no fault with, and every well-formed task file takes that fast path."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pytest_medbench.data.files import schema_error
from pytest_medbench.data.meds import _plainly_valid

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
# near misses: one field of one instance, or one top-level field, replaced by anything
near_instance = st.fixed_dictionaries(
    {}, optional={"input": anything | st.text(), "output": anything | good_output, "id": anything}
)
near_document = st.fixed_dictionaries(
    {},
    optional={
        "Definition": anything | st.lists(st.text(max_size=3), max_size=2),
        "Instances": st.lists(good_instance | near_instance | anything, max_size=3),
        "Output_language": anything,
    },
)


@given(good_document)
def test_every_well_formed_task_file_takes_the_fast_path(document):
    assert schema_error(document, SCHEMA) is None
    assert _plainly_valid(document)


@given(near_document | anything)
def test_what_the_fast_check_passes_the_schema_passes(document):
    if _plainly_valid(document):
        assert schema_error(document, SCHEMA) is None
