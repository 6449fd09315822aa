"""MedS-Bench: every instance of every task found under <data>/meds-bench/ is one item."""

import pytest


def test_meds(meds_item, medbench):
    record = medbench.evaluate(meds_item)
    if not record.passed:  # the rule, the parsed answer and the reference, without a traceback
        pytest.fail(record.failure_message(), pytrace=False)
