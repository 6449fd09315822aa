from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings
from openai_server import OpenAIServer

pytest_plugins = ["pytester"]

# Property tests: a quick profile for every run, a larger one for a nightly job
# (HYPOTHESIS_PROFILE=nightly pytest tests/ -n 2).
settings.register_profile("default", max_examples=100, deadline=None)
settings.register_profile("nightly", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

REPO = Path(__file__).resolve().parent.parent


def run_python(*arguments: str, cwd: Path, path: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    """``python <arguments>`` in a fresh interpreter, this checkout importable (after the folders of
    ``path``), its output captured."""
    folders = [*map(str, path), str(REPO), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(folders)}
    command = [sys.executable, *arguments]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


SUITES = REPO / "suites"
FIXTURES = REPO / "fixtures"
SHARED_DATA = REPO.parent / "shared" / "medbench-data"


def needs_shared(path: Path) -> pytest.MarkDecorator:
    """Skip unless ``path`` of the shared MedR-Bench mirror (``../shared`` beside the checkout) exists;
    the reason names the missing path, so a skip elsewhere says what it would need."""
    return pytest.mark.skipif(
        not path.exists(), reason=f"needs {path} (the MedR-Bench mirror in ../shared beside the checkout)"
    )


# Fields that legitimately differ between two runs of the same evaluation.
VOLATILE = ("latency_s", "started", "finished", "cache_hits", "reused", "tokens", "cost_usd")


@pytest.fixture(scope="session", autouse=True)
def _heavy_imports_once():
    """Import the heavy libraries once in this process, before any in-process pytester run.

    pytester removes the modules a run imported when it ends; removing litellm's dependencies that
    way leaves importlib.metadata finding no distributions, so the next run would not load the plugin.
    litellm's httpx imports httpcore on its first client and maps httpcore's exceptions by class, so
    a re-imported httpcore would escape that map: it too must be loaded once.
    """
    from pytest_medbench.metrics import overlap
    from pytest_medbench.models.litellm_import import import_litellm

    import_litellm()
    overlap.bleu_1("warm up", "warm up", "zh")
    overlap.bleu_1("warm up", "warm up", "ja")
    overlap.bleu_1("warm up.", "warm up.")  # the English punkt model
    overlap.rouge_l("warm up", "warm up")
    import httpcore  # noqa: F401
    import jsonschema  # noqa: F401
    import numpy  # noqa: F401


@pytest.fixture
def openai_server():
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def run_suites(pytester, tmp_path):
    """Run the benchmark suites in-process with the given options; returns (result, leaderboard or None)."""

    def run(*args: str, report: str = "leaderboard.json"):
        report_path = tmp_path / report
        result = pytester.runpytest(
            str(SUITES),
            "-p",
            "no:cacheprovider",
            "--medbench-report",
            str(report_path),
            "--medbench-cache",
            str(tmp_path / "cache.sqlite3"),
            *args,
        )
        board = json.loads(report_path.read_text()) if report_path.exists() else None
        return result, board

    return run


def stable(board: dict) -> dict:
    """A leaderboard without run metadata and without the fields that vary between identical runs."""

    def strip(entry: dict) -> dict:
        return {key: value for key, value in entry.items() if key not in VOLATILE}

    return {section: [strip(e) for e in board[section]] for section in ("tasks", "categories", "benchmarks")}


def mcqa_data(root: Path, count: int = 200) -> Path:
    """A data directory with one MCQA task of ``count`` distinct questions."""
    folder = root / "data" / "meds-bench" / "MCQA"
    folder.mkdir(parents=True)
    instances = [
        {
            "input": f"Question: Which option is number {n}?\nOptions: A: {n}\tB: {n + 1}\tC: {n + 2}",
            "output": f"The right answer is A: {n}",
        }
        for n in range(count)
    ]
    (folder / "task57_synthetic.json").write_text(
        json.dumps({"Definition": ["Pick one."], "Instances": instances})
    )
    return root / "data"
