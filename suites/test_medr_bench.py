"""MedR-Bench: every case found under <data>/medrbench/ is one item per setting."""


def test_medr(medr_item, medbench):
    record = medbench.evaluate(medr_item)
    passed = record.passed
    assert passed, f"answer judged wrong: parsed {record.parsed.get('answer')!r}, scores {record.scores}"
