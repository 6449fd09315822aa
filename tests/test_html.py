"""The HTML leaderboard: self-contained, shows the runs' numbers, escapes model text; checked in a
real headless Chromium (Debian's ``chromium``, installed by .ci/run; skipped where it is absent)."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
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
    # escaped as markupsafe (jinja2's autoescape) writes it: ' is &#39;
    assert "&lt;script&gt;document.title=&#39;PWNED&#39;" in page and ATTACK not in page
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


def test_failed_items_show_their_reference_and_pass_rule(two_runs):
    from markupsafe import escape

    task57 = (
        Path(__file__).resolve().parent.parent
        / "fixtures"
        / "meds-bench"
        / "MCQA"
        / "task57_medqa_usmle.jsonl"
    )
    instances = json.loads(task57.read_text(encoding="utf-8"))["Instances"]
    wrong = [i["output"] for i in instances if not i["output"].startswith("The right answer is A")]
    assert wrong
    page = (two_runs / "run.html").read_text(encoding="utf-8")
    for reference in wrong:
        assert f"<p>reference</p><pre>{escape(reference)}</pre>" in page
    assert "answer wrong under official scoring (must be correct)" in page


@pytest.fixture
def fact_run(run_suites, tmp_path):
    """task1, task16 and task100 (fact_verification holds task16's accuracy and task100's BLEU/ROUGE),
    run strict, so the page has a second run's settings to show beside the official one; MedR-Bench's
    oracle diagnosis, where the baseline scores 0."""
    selection = "task1_pico or task16_ or task100_ or oracle_diagnosis"
    run_suites("-k", selection, "--medbench-scoring", "strict", report="strict.json")
    run_suites("-k", selection, f"--medbench-html={tmp_path / 'run.html'}", report="official.json")
    assert (
        main(
            [
                "html",
                str(tmp_path / "strict.json"),
                str(tmp_path / "official.json"),
                "-o",
                str(tmp_path / "both.html"),
            ]
        )
        == 0
    )
    return (tmp_path / "both.html").read_text(encoding="utf-8")


def test_the_page_orders_tasks_numerically_and_shows_every_metric_and_each_runs_settings(fact_run):
    table = fact_run[fact_run.index("<h2>Tasks</h2>") :]
    positions = [table.index(f"meds.{task} ") for task in ("task1", "task16", "task100")]
    assert positions == sorted(positions)  # 1 < 16 < 100, not the text order 1, 100, 16
    bars = fact_run[fact_run.index("<svg") : fact_run.index("</svg>")]
    group = bars[bars.index("meds.fact_verification") :]
    for metric in ("accuracy", "rouge_l", "bleu_1"):  # each of the category's metrics, for both runs
        assert group.count(f"<title>{metric} ") >= 2
    assert "strict: model medbench/baseline" in fact_run and "scoring strict" in fact_run
    assert "official: model medbench/baseline" in fact_run and "scoring official" in fact_run


def test_a_zero_score_is_a_visible_bar(fact_run):
    zero_bars = re.findall(r'<rect [^>]*width="([\d.]+)"[^>]*><title>\w+ 0\.00 ', fact_run)
    assert zero_bars  # the baseline's MedR-Bench accuracy is 0
    assert all(float(width) >= 2 for width in zero_bars)


def test_medbench_html_refuses_samples_of_another_run(two_runs, capsys):
    files = [
        str(two_runs / "after.json"),
        str(two_runs / "before.json"),
        "--samples",
        str(two_runs / "after.jsonl"),
    ]
    assert main(["html", *files, "-o", str(two_runs / "wrong.html")]) == 2
    assert "after.jsonl does not belong to" in capsys.readouterr().err
    assert not (two_runs / "wrong.html").exists()
    assert compare_page(two_runs) == 0  # the same samples with their own run last: accepted


def _png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGBA bytes) of an 8-bit RGB(A) PNG, unfiltered (the format's own spec)."""
    data = path.read_bytes()
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert depth == 8 and colour in (2, 6)
    channels = 4 if colour == 6 else 3
    chunks, offset = b"", 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        if data[offset + 4 : offset + 8] == b"IDAT":
            chunks += data[offset + 8 : offset + 8 + length]
        offset += 12 + length
    raw, stride, rows, previous = zlib.decompress(chunks), width * channels, [], bytearray(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                guess = left + up - corner
                pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(bytes(line))
        previous = line
    return width, channels, rows


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_in_chromium_the_chart_spans_the_window(fact_run, tmp_path):
    shot = tmp_path / "wide.png"
    chromium(f"--screenshot={shot}", "--window-size=1400,900", (tmp_path / "both.html").as_uri())
    width, channels, rows = _png_pixels(shot)
    scrollbar = 20

    def pixel(row: bytes, x: int) -> bytes:
        return row[x * channels : x * channels + 3]

    bars = {x for row in rows for x in range(width) if max(pixel(row, x)) - min(pixel(row, x)) > 60}
    dark = {x for row in rows for x in range(width - scrollbar) if max(pixel(row, x)) < 100}
    assert bars, "no bars drawn"
    # the chart's value labels (dark text right of the 100 tick) sit past 80% of a 1,400 px window:
    # the page uses the window's width, not a fixed 880 px chart in a 1,200 px column
    assert max(dark) > 0.8 * width


def test_hostile_names_and_answers_are_escaped_wherever_the_page_shows_them(two_runs):
    from pytest_medbench.report.html import render

    hostile = "<script>alert(1)</script>"
    board = json.loads((two_runs / "after.json").read_text(encoding="utf-8"))  # task57 only: one task
    (task,) = board["tasks"]
    task["task"] = hostile
    board["categories"][0]["category"] = hostile
    board["run"]["model"]["name"] = hostile
    lines = (two_runs / "after.jsonl").read_text(encoding="utf-8").splitlines()
    samples = [json.loads(line) for line in lines]
    failed = next(sample for sample in samples if not sample["passed"])
    failed.update(task=hostile, output=hostile, reference=hostile)
    page = render([(hostile, board)], samples)
    assert hostile not in page
    # the run's name and model in its settings line and in the legend (4), the run's column head (1),
    # the category's bar label (1), the task's row (1, one metric), the failed item's task, output and
    # reference (3)
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 10


PASSWORD = 'pa&ss<wo"rd-Kq81'  # HTML and JSON escape it: a mask applied after escaping misses it


def written_forms(secret: str) -> set[str]:
    import html

    import markupsafe

    return {secret, json.dumps(secret)[1:-1], html.escape(secret), str(markupsafe.escape(secret)), "Kq81"}


def test_a_password_that_html_and_json_escape_is_masked_in_every_output(run_suites, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_PASSWORD", PASSWORD)
    replay = tmp_path / "replay.jsonl"
    records = [{"task": "task57", "id": str(n), "output": f"Z, as {PASSWORD} says"} for n in range(5)]
    replay.write_text("\n".join(json.dumps(r) for r in records))
    outputs = {name: tmp_path / name for name in ("run.html", "samples.jsonl", "board.json")}
    run_suites(
        "-k", "task57", "--model", f"replay:{replay}", f"--medbench-samples={outputs['samples.jsonl']}",
        f"--medbench-html={outputs['run.html']}", report="board.json",
    )  # fmt: skip
    for path in outputs.values():
        text = path.read_text(encoding="utf-8")
        assert "as *** says" in text or path.name == "board.json", path.name  # the answer is shown
        assert not {form for form in written_forms(PASSWORD) if form in text}, path.name


def test_a_long_parsed_answer_is_masked_before_the_page_cuts_it(two_runs, monkeypatch):
    from pytest_medbench.report.html import render

    key = "sk-Lz4wQ-page-cut-7c2e9b10"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    board = json.loads((two_runs / "after.json").read_text(encoding="utf-8"))
    samples = [
        json.loads(line) for line in (two_runs / "after.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    failed = next(sample for sample in samples if not sample["passed"])
    # the parsed answer's JSON is cut at 4,000 characters, inside the key
    failed["parsed"] = {"answer": "x" * (4000 - len('{\n "answer": "') - 10) + key}
    page = render([("run", board)], samples)
    assert key[:7] not in page and "x" * 100 in page


# -- usage errors of ``medbench html`` and ``medbench compare``: exit 2, one line naming what is wrong --


@pytest.fixture
def small_run(tmp_path) -> Path:
    """A leaderboard of 4 items of task57 (3 passed), as run.json."""
    from pytest_medbench.report import leaderboard
    from pytest_medbench.report.records import ItemRecord

    run = json.loads((Path(__file__).parent / "run_metadata.json").read_text())
    records = [
        ItemRecord("meds", "task57", "mcqa", f"{i:03d}", scores={"accuracy": float(i != 3)}, passed=i != 3)
        for i in range(4)
    ]
    path = tmp_path / "run.json"
    path.write_text(json.dumps(leaderboard.build(run, records)))
    return path


def last_error(capsys) -> str:
    """The last line the command wrote to stderr, after checking it wrote no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"\xff\xfe bad", "cannot read {samples}: 'utf-8' codec can't decode byte 0xff"),
        (b"[1, 2]\n", "{samples} line 1: not a JSON object; not a pytest-medbench samples file"),
        (b'\n{"passed": false}\n', "{samples} line 2: missing benchmark, task, id; not a pytest-medbench"),
        (b'{"benchmark": "meds", "task": "task57"}\n', "{samples} line 1: missing id; not a pytest-medbench"),
        (b'{"benchmark": "meds",\n', "cannot read {samples}: line 1: Expecting"),
    ],
    ids=["not-utf8", "not-an-object", "no-benchmark", "no-id", "not-json"],
)
def test_html_refuses_a_samples_file_it_cannot_read_naming_it(small_run, tmp_path, capsys, content, expected):
    samples = tmp_path / "samples.jsonl"
    samples.write_bytes(content)
    page = tmp_path / "page.html"
    assert main(["html", str(small_run), "--samples", str(samples), "-o", str(page)]) == 2
    assert last_error(capsys).startswith("medbench: " + expected.format(samples=samples))
    assert not page.exists()


def test_html_refuses_an_output_it_cannot_write_before_reading_anything(small_run, tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    missing_run = str(tmp_path / "not-read.json")  # never read: the output is checked first
    assert main(["html", missing_run, "-o", str(tmp_path / "afile" / "x.html")]) == 2
    assert (
        last_error(capsys)
        == f"medbench: -o {tmp_path / 'afile' / 'x.html'}: {tmp_path / 'afile'} is a file, not a directory"
    )
    assert main(["html", str(small_run), "-o", str(tmp_path)]) == 2
    assert last_error(capsys) == f"medbench: -o {tmp_path}: is a directory; give a file name"
    before = small_run.read_bytes()
    assert main(["html", str(small_run), "-o", str(small_run)]) == 2  # the page over its own run
    assert "names that file too" in last_error(capsys)
    assert small_run.read_bytes() == before


def test_html_and_compare_create_missing_folders_above_their_output(small_run, tmp_path, capsys):
    """As the pytest output options do (``--medbench-html`` under a folder not made yet)."""
    page, comparison = tmp_path / "new" / "deeper" / "page.html", tmp_path / "new2" / "c.json"
    assert main(["html", str(small_run), "-o", str(page)]) == 0
    assert "meds.task57" in page.read_text(encoding="utf-8")
    assert main(["compare", str(small_run), str(small_run), "--json", str(comparison)]) == 0
    assert json.loads(comparison.read_text())["passed"] is True


def test_compare_refuses_an_output_it_cannot_write_or_that_is_its_baseline(small_run, tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    assert (
        main(["compare", str(small_run), str(small_run), "--json", str(tmp_path / "afile" / "c.json")]) == 2
    )
    assert last_error(capsys).endswith(f"{tmp_path / 'afile'} is a file, not a directory")
    current = tmp_path / "current.json"
    current.write_bytes(before := small_run.read_bytes())
    for role, path in (("the baseline", small_run), ("the run", current)):
        assert main(["compare", str(small_run), str(current), "--json", str(path)]) == 2
        assert last_error(capsys) == f"medbench: --json {path}: {role} names that file too; give each its own"
        assert path.read_bytes() == before


@pytest.mark.parametrize(
    "option, value, rule",
    [
        ("--alpha", "0", "between 0 and 1"),
        ("--alpha", "-1", "between 0 and 1"),
        ("--alpha", "nan", "between 0 and 1"),
        ("--alpha", "1", "between 0 and 1"),
        ("--alpha", "5", "between 0 and 1"),
        ("--max-drop", "-3", "at least 0"),
        ("--max-drop", "nan", "at least 0"),
    ],
)
def test_compare_refuses_the_alpha_and_max_drop_the_pytest_options_refuse(
    small_run, capsys, option, value, rule
):
    with pytest.raises(SystemExit) as exit_:
        main(["compare", str(small_run), str(small_run), option, value])
    assert exit_.value.code == 2
    assert last_error(capsys) == f"medbench compare: error: argument {option}: {value!r} must be {rule}"


def test_compare_takes_what_the_pytest_options_take(small_run, capsys):
    assert main(["compare", str(small_run), str(small_run), "--alpha", "0.2", "--max-drop", "0"]) == 0
    assert capsys.readouterr().out.strip().endswith("PASS (max drop 0 points, alpha 0.2)")
    with pytest.raises(SystemExit):
        main(["compare", str(small_run), str(small_run), "--alpha", "abc"])
    assert last_error(capsys) == "medbench compare: error: argument --alpha: 'abc' is not a valid float"
