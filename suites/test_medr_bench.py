"""MedR-Bench: every case found under <data>/medrbench/ is one item per setting."""

import pytest


def test_medr(medr_item, medbench):
    record = medbench.evaluate(medr_item)
    if not record.passed:  # the rule, the parsed answer and the reference, without a traceback
        pytest.fail(record.failure_message(), pytrace=False)
