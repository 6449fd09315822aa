"""The MedS-Bench loader's plain-Python schema check must agree with the JSON Schema: a document it
passes is one jsonschema finds no fault with, and every well-formed task file takes that fast path."""

from __future__ import annotations

from hypothesis import given, settings
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
