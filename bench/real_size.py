"""Collection of a MedS-Bench data directory of the real size and shape: time and peak RSS.

    python bench/real_size.py            # builds ~250 MB under a temporary folder; about a minute
    python bench/real_size.py --keep DIR # build into DIR and leave it there

The files are synthetic (our own text) but shaped like the released ones: the test-set sizes of
the MedS-Bench paper for every task without MIMIC (31,454 instances), task130 grown to about
169 MB (its reported size) and to 5,046 instances so the whole reaches 35,000 items, task74 at
about 43 MB, and the MCQA ``.jsonl`` files as one pretty-printed JSON document each. It measures
``pytest suites/test_meds_bench.py --collect-only`` in a fresh process, without and with a
``medbench-data.lock.json`` (a run then hashes every file against the lock). Targets: < 5 s wall,
< 1 GB peak RSS.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pytest_medbench.data.lock import Lock, LockedFile, LockedRepo, write_lock  # noqa: E402

TOTAL_ITEMS = 35_000
TASK130_BYTES = 169_000_000
# (folder, file, instances, bytes of input per instance, gold kind)
TASKS = [
    ("MCQA", "task57_medqa_question_answering_en.jsonl", 1273, 900, "mcqa"),
    ("MCQA", "task122_medmcqa_test_set.json", 4183, 300, "mcqa"),
    ("MCQA", "task123_pubmedqa_test_set.json", 1000, 1600, "yesno"),
    ("MCQA", "task58_medqa_question_answering_zh.jsonl", 3426, 400, "mcqa"),
    ("MCQA", "task59_igakuqa_question_answering.jsonl", 199, 500, "mcqa"),
    ("MCQA", "task60_frenchmedmcqa_question_answering.jsonl", 622, 400, "mcqa"),
    ("MCQA", "task61_rumedbench_question_answering.jsonl", 256, 500, "mcqa"),
    ("MCQA", "task129_headqa_question_answering.jsonl", 2742, 400, "mcqa"),
    ("Text_summarization", "task114_meqsum.json", 100, 600, "text"),
    ("Text_summarization", "task110_rct_text.json", 100, 2500, "text"),
    ("Information_extraction", "task1_participant_extraction.json", 43, 200, "text"),
    ("Information_extraction", "task2_intervention_extraction.json", 43, 200, "text"),
    ("Information_extraction", "task3_outcome_extraction.json", 43, 200, "text"),
    ("Information_extraction", "task29_drug_dose_extraction.json", 23, 200, "label"),
    (
        "Information_extraction",
        "task74_pmc_patient_case_report_basic_information_extraction.json",
        1500,
        28_500,
        "profile",
    ),
    ("Explanation", "task18_test_healthfact_sentence_generation.json", 1235, 1500, "text"),
    ("Explanation", "task46_do_entity_explanation.json", 1115, 100, "text"),
    ("Explanation", "task50_biolord_explanation.json", 1115, 100, "text"),
    *[
        ("Rationale", f"task{n}_mmedbench_rationale.json", count, 900, "text")
        for n, count in ((51, 200), (52, 195), (53, 189), (54, 190), (55, 173), (56, 189))
    ],
    *[
        ("NER", f"task{n}_named_enetity_recognition.json", 1500, 250, "entities")
        for n in (125, 126, 127, 128)
    ],
    ("Treatment_planning", "task131_SEER_text_classification_test.json", 1500, 600, "seer"),
    ("Text_classification", "task106_hoc_text_classification.json", 158, 1500, "hoc"),
    ("Fact_verication", "task12_pubmedqa_classification.json", 650, 1600, "label"),
    ("Fact_verication", "task16_test_healthfact_classification.json", 1188, 1500, "label"),
    ("Fact_verication", "task100_ebms_answer_vertification.json", 304, 800, "text"),
]
WORDS = [
    "patient",
    "presented",
    "with",
    "acute",
    "chest",
    "pain",
    "fever",
    "cough",
    "dyspnea",
    "history",
    "of",
    "hypertension",
    "diabetes",
    "examination",
    "revealed",
    "tenderness",
    "laboratory",
    "results",
    "showed",
    "elevated",
    "troponin",
    "levels",
    "treatment",
    "included",
    "aspirin",
    "heparin",
    "and",
    "the",
    "symptoms",
    "resolved",
    "after",
    "three",
    "days",
    "of",
    "observation",
]


PROSE = " ".join(WORDS[(k * 7) % len(WORDS)] for k in range(40_000))  # ~300 KB to cut from


def text(n: int, size: int) -> str:
    """About ``size`` characters of distinct clinical-looking prose for instance ``n``."""
    offset = (n * 7919) % (len(PROSE) - size)
    return f"Case {n}: " + PROSE[offset : offset + size]


def instance(n: int, size: int, kind: str) -> dict:
    body = text(n, size)
    gold = {
        "mcqa": f"The right answer is {'ABCD'[n % 4]}: option {n}",
        "yesno": ("yes", "no", "maybe")[n % 3],
        "label": ("true", "false", "mixture")[n % 3],
        "profile": f"Gender: {'FM'[n % 2]}\n\nAge: \"[[{18 + n % 60}.0, 'year']]\"",
        "entities": f"entity {n}, compound {n + 1}.",
        "seer": f"The treatment planning is: plan {n % 7}.",
        "hoc": "sustaining proliferative signaling, evading growth suppressors",
        "ddx": f"The diagnosis result is disease {n % 49}.",
        "text": text(n + 1, 150),
    }[kind]
    if kind == "mcqa":
        body += "\nOptions: " + "\t".join(f"{letter}: option {n + i}" for i, letter in enumerate("ABCD"))
    return {"input": body, "output": gold}


def write(path: Path, instances: list[dict], pretty: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"Definition": ["Answer the question."], "Instances": instances}
    path.write_text(json.dumps(document, indent=4 if pretty else None, ensure_ascii=False), encoding="utf-8")


def build(root: Path) -> int:
    items = 0
    for folder, name, count, size, kind in TASKS:
        write(
            root / "meds-bench" / folder / name,
            [instance(n, size, kind) for n in range(count)],
            pretty=name.endswith(".jsonl"),
        )
        items += count
    count130 = TOTAL_ITEMS - items
    size130 = TASK130_BYTES // count130 - 60
    write(
        root / "meds-bench" / "Diagnosis" / "task130_DDXPlus_text_classification_test.json",
        [instance(n, size130, "ddx") for n in range(count130)],
        pretty=False,
    )
    return items + count130


def lock(root: Path) -> None:
    """A lock over every file, as ``medbench fetch`` writes it."""
    files = []
    for path in sorted((root / "meds-bench").rglob("task*")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        relative = path.relative_to(root).as_posix()
        files.append(LockedFile(relative, "bench/synthetic", relative, path.stat().st_size, digest))
    write_lock(root, Lock((LockedRepo("bench/synthetic", "0" * 40, "meds-bench"),), tuple(files)))


def collect(root: Path) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak RSS in MB, last line) of collecting the MedS-Bench suite over
    ``root``. The CPU time (user + system) is what the wall time is on an idle machine: collection
    runs on one thread, so it tells the two apart on a busy one."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(REPO / "suites" / "test_meds_bench.py"),
        "--collect-only",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--medbench-data={root}",
    ]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode written, as on a user's machine (bench/throughput.py)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    output = process.stdout.read().decode()
    _, _, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    last = [line for line in output.splitlines() if line.strip()][-1]
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build into this folder and keep it")
    parser.add_argument("--build-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        started, items = time.perf_counter(), build(args.build_only)
        size = sum(p.stat().st_size for p in (args.build_only / "meds-bench").rglob("task*")) / 1e6
        task130 = next((args.build_only / "meds-bench" / "Diagnosis").iterdir()).stat().st_size / 1e6
        print(
            f"built {items:,} instances, {size:.0f} MB (task130 {task130:.0f} MB) in "
            f"{time.perf_counter() - started:.0f} s"
        )
        return
    with tempfile.TemporaryDirectory(prefix="medbench-real-size-") as scratch:
        root = args.keep or Path(scratch)
        # built in a child, so this process stays small: a child forked from it starts with its pages
        subprocess.run([sys.executable, __file__, "--build-only", str(root)], check=True)
        for label in ("without a lock", "with a lock (every file hashed)"):
            if label.startswith("with"):
                lock(root)
            wall, cpu, rss, last = collect(root)
            verdict = "met" if wall < 5 and rss < 1024 else "MISSED"  # the wall a user waits
            print(
                f"collect {label}: {wall:.2f} s wall, {cpu:.2f} s CPU, peak RSS {rss:.0f} MB ({last}); "
                f"target <5 s wall, <1 GB: {verdict}; load average {os.getloadavg()[0]:.1f}"
            )


if __name__ == "__main__":
    main()
