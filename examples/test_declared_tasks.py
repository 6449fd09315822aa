"""Task files of your own (data/custom/), scored as their declarations say: one item per instance."""


def test_declared_task(meds_item, medbench):
    record = medbench.evaluate(meds_item)
    assert record.passed, f"answer {record.output!r} scored {record.scores}"
