"""Hooks users implement in a conftest.py or a plugin (added in ``pytest_addhooks``)."""

from __future__ import annotations

import pytest


@pytest.hookspec(firstresult=True)
def pytest_medbench_evidence(query: str, k: int, config: pytest.Config) -> str | None:
    """Evidence text for the MedR-Bench treatment and factuality judges.

    ``query`` is a comma-separated keyword string; return the ``k`` best passages joined by blank
    lines, or None to let the next implementation answer. With no implementation the judges get no
    retrieval (stated in the leaderboard's ``run.evidence``). ``--medbench-evidence-dir`` turns on the
    built-in BM25 search over a local folder of text files.
    """
