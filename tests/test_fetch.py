"""``medbench fetch`` against a fake Hub on 127.0.0.1: the files, their hashes, the lock, the run-time
check against the lock, and the messages. Each fetch runs in a subprocess, because huggingface_hub
reads ``HF_ENDPOINT`` when it is imported."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fake_hub import FakeHub

from conftest import FIXTURES, SUITES
from pytest_medbench.cli import main

MEDS, SPLIT, MEDR = "Henrychur/MedS-Bench", "Henrychur/MedS-Bench-SPLIT", "MAGIC-AI4Med/MedRBench"
COMMIT_A, COMMIT_B, COMMIT_C, COMMIT_D = "a" * 40, "b" * 40, "c" * 40, "d" * 40
# Upstream paths (docs/meds-bench.md section 9) holding our own fixture records.
TASK16 = "Fact_verication/task16_test_healthfact_classification.json"  # served from LFS
TASK57 = "MCQA/task57_medqa_question_answering_en.jsonl"  # a small git file
TASK130 = "Diagnosis/task130_DDXPlus_text_classification_test.json"  # LFS
TASK114 = "Text_summarization/task114_meqsum.json"
GATED = (
    "Clinical_outcome_prediction/task117_hospitalization.json",
    "Text_summarization/task112_mimic_cxr.json",
)
DIAGNOSIS = "diagnosis_957_cases_with_rare_disease_491.json"


def fixture_bytes(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


@pytest.fixture
def hub():
    with FakeHub() as fake:
        fake.add_commit(
            MEDS,
            COMMIT_A,
            {
                TASK16: fixture_bytes("meds-bench/Fact_verication/task16_pubhealth_verification.json"),
                TASK57: fixture_bytes("meds-bench/MCQA/task57_medqa_usmle.jsonl"),
                TASK130: fixture_bytes("meds-bench/Diagnosis/task130_ddxplus.json"),
                GATED[0]: fixture_bytes(
                    "meds-bench/Clinical_outcome_prediction/task117_hospitalization.json"
                ),
                "README.md": b"# MedS-Bench\n",
            },
        )
        fake.add_commit(
            SPLIT,
            COMMIT_B,
            {
                TASK114: fixture_bytes("meds-bench/Text_summarization/task114_medqsum.json"),
                GATED[1]: b'{"Definition": ["x"], "Instances": []}',
                TASK57: b"a copy the fetch must not take from this repo",
            },
        )
        fake.add_commit(
            MEDR, COMMIT_C, {f"data/{DIAGNOSIS}": fixture_bytes("medrbench/diagnosis_fixture_cases.json")}
        )
        fake.lfs.update({TASK16, TASK130, f"data/{DIAGNOSIS}"})
        yield fake


def medbench(endpoint: str, *args: str, tmp_path: Path, chunk_size: int | None = None, **env: str):
    """Run ``medbench ARGS`` in a fresh interpreter pointed at ``endpoint``; (exit code, stdout, stderr)."""
    code = "import sys\n"
    if chunk_size:  # small chunks, so a dropped connection leaves bytes on disk to resume from
        code += f"import huggingface_hub.constants as c; c.DOWNLOAD_CHUNK_SIZE = {chunk_size}\n"
    code += f"from pytest_medbench.cli import main; sys.exit(main({list(args)!r}))"
    environment = os.environ | {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf-home")} | env
    if "HF_HUB_OFFLINE" not in env:
        environment.pop("HF_HUB_OFFLINE", None)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120
    )
    return done.returncode, done.stdout, done.stderr


def read_lock(root: Path) -> dict:
    return json.loads((root / "medbench-data.lock.json").read_text())


def test_full_fetch_places_verified_files_and_pins_them_in_the_lock(hub, tmp_path):
    root = tmp_path / "data"
    code, out, err = medbench(hub.url, "fetch", "meds-bench", "--into", str(root), tmp_path=tmp_path)
    assert code == 0, err
    expected = {
        f"meds-bench/{TASK16}": hub.repos[MEDS][COMMIT_A][TASK16],
        f"meds-bench/{TASK57}": hub.repos[MEDS][COMMIT_A][TASK57],
        f"meds-bench/{TASK130}": hub.repos[MEDS][COMMIT_A][TASK130],
        f"meds-bench/{TASK114}": hub.repos[SPLIT][COMMIT_B][TASK114],
    }
    for relative, content in expected.items():
        assert (root / relative).read_bytes() == content
    lock = read_lock(root)
    assert {(r["repo"], r["commit"]) for r in lock["repos"]} == {(MEDS, COMMIT_A), (SPLIT, COMMIT_B)}
    assert {f["path"]: (f["size"], f["sha256"]) for f in lock["files"]} == {
        relative: (len(content), hashlib.sha256(content).hexdigest())
        for relative, content in expected.items()
    }
    assert not (root / ".medbench-download").exists()  # the staging folder goes once all is placed
    assert out.count("research use only") == 1  # the licence notice, once
    assert "4 downloaded, 0 already in place, 0 rejected" in out

    code, out, _ = medbench(hub.url, "fetch", "--verify", "--into", str(root), tmp_path=tmp_path)
    assert code == 0 and f"0 problems in 4 locked files in {root}" in out


def test_gated_tasks_are_never_requested_even_when_listed(hub, tmp_path):
    root = tmp_path / "data"
    code, out, err = medbench(hub.url, "fetch", "meds-bench", "--into", str(root), tmp_path=tmp_path)
    assert code == 0, err
    requested = " ".join(hub.requested_paths())
    assert "task117" not in requested and "task112" not in requested
    assert "not requested (PhysioNet-gated MIMIC)" in out and "task112_mimic_cxr.json" in out
    assert "credentials" in out  # how to add one's own copy
    assert not list(root.rglob("task117*")) and not list(root.rglob("task112*"))


def test_resume_after_a_truncated_download(hub, tmp_path):
    root = tmp_path / "data"
    hub.truncate_once.add(TASK130)
    code, _, err = medbench(
        hub.url, "fetch", "meds-bench", "--into", str(root), tmp_path=tmp_path, chunk_size=128
    )
    assert code == 0, err
    ranges = [r for method, path, r in hub.requests if method == "GET" and path.endswith(TASK130)]
    assert len(ranges) == 2 and ranges[0] is None
    resumed_from = int(ranges[1].removeprefix("bytes=").split("-")[0])
    assert resumed_from > 0  # the second request asked only for the rest
    content = hub.repos[MEDS][COMMIT_A][TASK130]
    assert (
        hashlib.sha256((root / "meds-bench" / TASK130).read_bytes()).hexdigest()
        == hashlib.sha256(content).hexdigest()
    )


def same_size_corruption(content: bytes) -> bytes:
    middle = len(content) // 2
    return content[:middle] + (b"X" if content[middle : middle + 1] != b"X" else b"Y") + content[middle + 1 :]


def test_a_corrupted_file_of_the_right_size_is_rejected_by_its_hash(hub, tmp_path):
    root = tmp_path / "data"
    hub.corrupt[TASK130] = same_size_corruption(hub.repos[MEDS][COMMIT_A][TASK130])  # LFS: sha256
    hub.corrupt[TASK57] = same_size_corruption(hub.repos[MEDS][COMMIT_A][TASK57])  # git: blob sha1
    code, out, err = medbench(hub.url, "fetch", "meds-bench", "--into", str(root), tmp_path=tmp_path)
    assert code == 1
    assert f"REJECTED meds-bench/{TASK130}: sha256" in err
    assert f"REJECTED meds-bench/{TASK57}: git blob sha1" in err
    assert not (root / "meds-bench" / TASK130).exists() and not (root / "meds-bench" / TASK57).exists()
    locked = {f["path"] for f in read_lock(root)["files"]}
    assert locked == {f"meds-bench/{TASK16}", f"meds-bench/{TASK114}"}  # the good files are kept

    hub.corrupt.clear()  # the Hub heals: a second fetch completes, keeping what was fetched already
    code, out, err = medbench(hub.url, "fetch", "meds-bench", "--into", str(root), tmp_path=tmp_path)
    assert code == 0, err
    assert "2 downloaded, 2 already in place" in out


def test_a_fetch_cut_short_keeps_the_repos_it_completed(hub, tmp_path):
    root = tmp_path / "data"
    hub.forbidden.add(TASK114)  # in the second repo
    code, out, err = medbench(hub.url, "fetch", "meds-bench", "--into", str(root), tmp_path=tmp_path)
    assert code == 2 and f"cannot reach the Hugging Face Hub at {hub.url} ({SPLIT}/{TASK114}): " in err
    assert "403 Forbidden" in err
    lock = read_lock(root)
    assert [r["repo"] for r in lock["repos"]] == [MEDS]
    assert {f["path"] for f in lock["files"]} == {f"meds-bench/{p}" for p in (TASK16, TASK57, TASK130)}

    hub.forbidden.clear()
    code, out, err = medbench(hub.url, "fetch", "meds-bench", "--into", str(root), tmp_path=tmp_path)
    assert code == 0, err
    assert "1 downloaded, 3 already in place" in out


def test_a_later_fetch_keeps_the_locked_commit_unless_told(hub, tmp_path):
    root = tmp_path / "data"
    assert medbench(hub.url, "fetch", "meds-bench", "--into", str(root), tmp_path=tmp_path)[0] == 0
    newer = dict(hub.repos[MEDS][COMMIT_A]) | {TASK16: b'{"Definition": ["new"], "Instances": []}'}
    hub.add_commit(MEDS, COMMIT_D, newer)  # main moves on
    hub.requests.clear()
    code, out, _ = medbench(hub.url, "fetch", "meds-bench", "--into", str(root), tmp_path=tmp_path)
    assert code == 0 and f"{MEDS}: commit {COMMIT_A}" in out
    assert f"/api/datasets/{MEDS}/revision/{COMMIT_A}" in hub.requested_paths()
    assert not [path for path in hub.requested_paths() if "/resolve/" in path]  # nothing downloaded again

    code, out, _ = medbench(
        hub.url, "fetch", "meds-bench", "--update", "--into", str(root), tmp_path=tmp_path
    )
    assert code == 0 and f"{MEDS}: commit {COMMIT_D}" in out
    assert (root / "meds-bench" / TASK16).read_bytes() == newer[TASK16]
    assert (MEDS, COMMIT_D) in {(r["repo"], r["commit"]) for r in read_lock(root)["repos"]}


def test_medrbench_full_files_found_by_name_and_the_missing_one_named(hub, tmp_path):
    root = tmp_path / "data"
    code, out, err = medbench(hub.url, "fetch", "medrbench", "--into", str(root), tmp_path=tmp_path)
    assert code == 0, err
    assert (root / "medrbench" / DIAGNOSIS).read_bytes() == hub.repos[MEDR][COMMIT_C][f"data/{DIAGNOSIS}"]
    assert f"not found on the Hub: {MEDR}: treatment_496_cases_with_rare_disease_165.json" in out
    assert "CC BY-NC-SA" in out


def test_released_outputs_are_fetched_and_locked_but_not_checked_by_a_run(hub, tmp_path, pytester):
    outputs = {"oracle_diagnosis/o3-mini.json": b'{"PMC1": {"content": "x"}}', "README.md": b"# outputs\n"}
    hub.add_commit("Henrychur/MedRbench-Inference-Results", COMMIT_D, outputs)
    root = tmp_path / "data"
    code, _, err = medbench(
        hub.url, "fetch", "medrbench", "--outputs", "--into", str(root), tmp_path=tmp_path
    )
    assert code == 0, err
    placed = root / "medrbench" / "released-outputs" / "oracle_diagnosis" / "o3-mini.json"
    assert placed.read_bytes() == outputs["oracle_diagnosis/o3-mini.json"]
    assert not (root / "medrbench" / "released-outputs" / "README.md").exists()
    assert ("Henrychur/MedRbench-Inference-Results", COMMIT_D) in {
        (r["repo"], r["commit"]) for r in read_lock(root)["repos"]
    }
    placed.write_text("edited")  # a run does not read the outputs, so it does not fail on them
    result = run_on(pytester, root, tmp_path / "run.json", "-rf", suite="test_medr_bench.py")
    assert "load_error" not in result.stdout.str()
    code, _, err = medbench(hub.url, "fetch", "--verify", "--into", str(root), tmp_path=tmp_path)
    assert code == 1 and str(placed) in err  # --verify does


def test_a_revision_the_hub_lacks_is_named(hub, tmp_path):
    code, _, err = medbench(
        hub.url, "fetch", "medrbench", "--revision", "v9", "--into", str(tmp_path / "d"), tmp_path=tmp_path
    )
    assert code == 2
    assert f"the Hugging Face Hub at {hub.url} has no {MEDR}@v9 (HTTP 404)" in err


def test_a_fetch_into_a_directory_with_a_broken_lock_names_it(hub, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "medbench-data.lock.json").write_text("[1, 2")
    code, _, err = medbench(hub.url, "fetch", "meds-bench", "--into", str(root), tmp_path=tmp_path)
    assert code == 2
    assert f"medbench fetch: {root / 'medbench-data.lock.json'}: not a readable lock file" in err
    assert "Traceback" not in err


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("offline_env", [{}, {"HF_HUB_OFFLINE": "1"}], ids=["unreachable", "offline-mode"])
def test_unreachable_hub_is_one_line_with_the_manual_layout_and_exit_2(tmp_path, offline_env):
    root = tmp_path / "data"
    endpoint = f"http://127.0.0.1:{closed_port()}"
    code, _, err = medbench(
        endpoint, "fetch", "meds-bench", "--into", str(root), tmp_path=tmp_path, **offline_env
    )
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("medbench fetch:")]
    assert len(lines) == 1 and "cannot reach the Hugging Face Hub" in lines[0]
    assert f"{root}/meds-bench/<HF folder>/task*.json" in lines[0]
    assert "Traceback" not in err


def with_userinfo(url: str, userinfo: str) -> str:
    return url.replace("://", f"://{userinfo}@", 1)


PASSWORD = "s3cretpass99"


def test_the_endpoints_password_is_never_printed_when_the_hub_is_unreachable(tmp_path):
    port = closed_port()
    endpoint = with_userinfo(f"http://127.0.0.1:{port}", f"user:{PASSWORD}")
    code, out, err = medbench(
        endpoint, "fetch", "medrbench", "--into", str(tmp_path / "d"), tmp_path=tmp_path
    )
    assert code == 2
    assert f"cannot reach the Hugging Face Hub at http://127.0.0.1:{port} (" in err
    assert PASSWORD not in out + err and "user:" not in out + err


def test_the_endpoints_password_is_never_printed_by_a_fetch(hub, tmp_path):
    endpoint = with_userinfo(hub.url, f"user:{PASSWORD}")
    code, out, err = medbench(
        endpoint, "fetch", "medrbench", "--into", str(tmp_path / "d"), tmp_path=tmp_path
    )
    assert code == 0, err
    assert PASSWORD not in out + err
    code, out, err = medbench(
        endpoint, "fetch", "medrbench", "--revision", "v9", "--into", str(tmp_path / "d"), tmp_path=tmp_path
    )
    assert code == 2 and f"the Hugging Face Hub at {hub.url} has no {MEDR}@v9 (HTTP 404)" in err
    assert PASSWORD not in out + err


def test_the_token_is_sent_but_never_printed(hub, tmp_path):
    secret = "hf_SECRETsecretSECRET1234"
    code, out, err = medbench(
        hub.url, "fetch", "meds-bench", "--into", str(tmp_path / "data"), tmp_path=tmp_path, HF_TOKEN=secret
    )
    assert code == 0, err
    dataset_requests = {p: auth for p, auth in hub.authorizations.items() if "datasets/" in p}
    assert set(dataset_requests.values()) == {f"Bearer {secret}"}  # on every request, in the header
    assert secret not in out + err


# -- the lock at run time ----------------------------------------------------------------------


def run_on(pytester, root: Path, report: Path, *args: str, suite: str = "test_meds_bench.py"):
    return pytester.runpytest(
        str(SUITES / suite),
        "-p",
        "no:cacheprovider",
        "--medbench-data",
        str(root),
        "--medbench-report",
        str(report),
        "--medbench-no-cache",
        *args,
    )


def test_a_changed_or_missing_file_is_a_data_error_at_the_next_run(hub, tmp_path, pytester):
    root = tmp_path / "data"
    assert medbench(hub.url, "fetch", "meds-bench", "--into", str(root), tmp_path=tmp_path)[0] == 0
    report = tmp_path / "run.json"
    result = run_on(pytester, root, report)
    board = json.loads(report.read_text())
    assert board["run"]["data"]["repos"] == [
        {"repo": MEDS, "commit": COMMIT_A, "dataset": "meds-bench"},
        {"repo": SPLIT, "commit": COMMIT_B, "dataset": "meds-bench"},
    ]
    assert not [line for line in result.outlines if "load_error" in line]

    changed = root / "meds-bench" / TASK16
    changed.write_bytes(same_size_corruption(changed.read_bytes()))  # same size: only the sha256 tells
    (root / "meds-bench" / TASK57).unlink()
    result = run_on(pytester, root, report, "-rf")
    text = result.stdout.str()
    assert f"{changed}: changed since fetch: sha256" in text
    assert f"{root / 'meds-bench' / TASK57}: missing" in text
    board = json.loads(report.read_text())
    errors = {t["task"]: t["errors"] for t in board["tasks"]}
    assert errors["task16_test_healthfact_classification"] == 1 and "task16" not in errors
    assert errors["task57_medqa_question_answering_en"] == 1
    assert board["tasks"] and any(t["task"] == "task130" and t["errors"] == 0 for t in board["tasks"])

    code, _, err = medbench(hub.url, "fetch", "--verify", "--into", str(root), tmp_path=tmp_path)
    assert code == 1 and str(changed) in err and "missing" in err


def test_an_unreadable_lock_is_a_data_error_naming_it(tmp_path, pytester):
    root = tmp_path / "data"
    (root / "meds-bench").mkdir(parents=True)
    (root / "medbench-data.lock.json").write_text("{not json")
    result = run_on(pytester, root, tmp_path / "run.json", "-rf")
    assert f"{root / 'medbench-data.lock.json'}: not a readable lock file" in result.stdout.str()


# -- fetch --verify without a lock: nothing verified is a usage error, not "0 problems" ----------


def verify(root: Path, capsys) -> tuple[int, str]:
    code = main(["fetch", "--verify", "--into", str(root)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out + captured.err


def test_verify_without_a_lock_verifies_nothing_and_says_so(tmp_path, capsys):
    code, said = verify(tmp_path / "nowhere", capsys)
    assert code == 2 and f"{tmp_path / 'nowhere'}: no such directory; nothing to verify" in said
    assert "problems" not in said
    root = tmp_path / "data"
    (root / "meds-bench").mkdir(parents=True)  # data laid out by hand: no lock
    code, said = verify(root, capsys)
    assert code == 2 and f"{root} has no medbench-data.lock.json" in said and "nothing to verify" in said
    (root / "medbench-data.lock.json").write_text(json.dumps({"lock_version": 1, "repos": [], "files": []}))
    code, said = verify(root, capsys)
    assert code == 2 and f"{root / 'medbench-data.lock.json'} lists no files; nothing to verify" in said


def test_verify_with_an_unreadable_lock_is_a_usage_error_naming_it(tmp_path, capsys):
    root = tmp_path / "data"
    root.mkdir()
    (root / "medbench-data.lock.json").write_text("[1, 2")
    code, said = verify(root, capsys)
    assert code == 2 and f"{root / 'medbench-data.lock.json'}: not a readable lock file" in said
