"""The HTML leaderboard: self-contained, shows the runs' numbers, escapes model text; checked in a
real headless Chromium (Debian's ``chromium``, installed by .ci/run; skipped where it is absent)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_medbench.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ATTACK = "<script>document.title='PWNED';window.pwned=1</script><img src=x onerror=alert(1)>"


@pytest.fixture
def two_runs(run_suites, tmp_path):
    replay = tmp_path / "replay.jsonl"
    records = [{"task": "task57", "id": str(n), "output": "The right answer is A: x"} for n in range(5)]
    records[1]["output"] = f"The right answer is A: {ATTACK}"
    replay.write_text("\n".join(json.dumps(r) for r in records))
    run_suites("-k", "task57 or oracle_diagnosis", "--model", "medbench/oracle", report="before.json")
    samples = tmp_path / "after.jsonl"
    run_suites(
        "-k",
        "task57",
        "--model",
        f"replay:{replay}",
        f"--medbench-samples={samples}",
        f"--medbench-html={tmp_path / 'run.html'}",
        report="after.json",
    )
    return tmp_path


def compare_page(runs: Path) -> int:
    """``medbench html`` over both runs, with the second run's samples, into both.html."""
    files = [str(runs / "before.json"), str(runs / "after.json"), "--samples", str(runs / "after.jsonl")]
    return main(["html", *files, "-o", str(runs / "both.html")])


def chromium(*args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


def test_the_page_is_self_contained_and_escapes_model_text(two_runs):
    page = (two_runs / "run.html").read_text(encoding="utf-8")
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", page)  # nothing fetched at view time
    assert "&lt;script&gt;document.title=&#x27;PWNED&#x27;" in page and ATTACK not in page
    assert compare_page(two_runs) == 0
    both = (two_runs / "both.html").read_text(encoding="utf-8")
    assert "before" in both and "after" in both and "-60.00" in both  # task57: oracle 100 -> replay 40


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_the_page_renders_in_headless_chromium(two_runs):
    page = two_runs / "both.html"
    compare_page(two_runs)
    dom = chromium("--dump-dom", page.as_uri())
    assert "<title>pytest-medbench leaderboard</title>" in dom.stdout  # the attack did not rename the page
    assert "&lt;script&gt;document.title='PWNED'" in dom.stdout  # shown as text
    assert "40.00" in dom.stdout and "100.00" in dom.stdout and "-60.00" in dom.stdout
    assert not [line for line in dom.stderr.splitlines() if "CONSOLE" in line and "rror" in line]
    shot = two_runs / "leaderboard.png"
    chromium(f"--screenshot={shot}", "--window-size=1250,1400", page.as_uri())
    assert shot.exists() and shot.stat().st_size > 10_000
