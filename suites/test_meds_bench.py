"""MedS-Bench: every instance of every task found under <data>/meds-bench/ is one item."""


def test_meds(meds_item, medbench):
    record = medbench.evaluate(meds_item)
    passed = record.passed
    assert passed, f"answer judged wrong: parsed {record.parsed}, scores {record.scores}"
