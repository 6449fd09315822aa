"""Cost of the statistics on a large run: leaderboard.build and compare on 15,000 synthetic items.

    python bench/statistics.py

Two runs of the same items with independent random answers: 40 accuracy tasks of 250 items (two
categories), 10 graded tasks of 300 (ROUGE-L and BLEU-1), 4 NER tasks of 250 (micro-F1 counts) and
HoC with 1,000 items over 10 labels (macro-F1 counts).
"""

from __future__ import annotations

import json
import random
import resource
import time
from pathlib import Path

from pytest_medbench.report import leaderboard
from pytest_medbench.report.compare import compare
from pytest_medbench.report.records import ItemRecord

RUN = json.loads((Path(__file__).resolve().parent.parent / "tests" / "run_metadata.json").read_text())
LABELS = [f"label{i}" for i in range(10)]


def records(seed: int) -> list[ItemRecord]:
    rng = random.Random(seed)
    out = []
    for t in range(40):
        category = "mcqa" if t < 20 else "diagnosis"
        for i in range(250):
            out.append(
                ItemRecord(
                    "meds", f"task{t}", category, str(i), scores={"accuracy": float(rng.random() < 0.7)}
                )
            )
    for t in range(40, 50):
        for i in range(300):
            scores = {"rouge_l": rng.random(), "bleu_1": rng.random()}
            out.append(ItemRecord("meds", f"task{t}", "rationale", str(i), scores=scores))
    for t in range(125, 129):
        for i in range(250):
            counts = {"tp": rng.randint(0, 3), "fp": rng.randint(0, 2), "fn": rng.randint(0, 2)}
            out.append(ItemRecord("meds", f"task{t}", "ner", str(i), counts=counts, aggregation="micro_f1"))
    for i in range(1000):
        counts = {}
        for label in LABELS:
            gold, predicted = rng.random() < 0.2, rng.random() < 0.25
            counts[f"{label}|tp"] = float(gold and predicted)
            counts[f"{label}|fp"] = float(predicted and not gold)
            counts[f"{label}|fn"] = float(gold and not predicted)
        out.append(
            ItemRecord(
                "meds", "task106", "text_classification", str(i), counts=counts, aggregation="macro_f1"
            )
        )
    return out


def main() -> None:
    first, second = records(1), records(2)
    start = time.perf_counter()
    baseline = leaderboard.build(RUN, first)
    print(f"{len(first)} items: leaderboard.build {time.perf_counter() - start:.2f} s")
    current = leaderboard.build(RUN, second)
    start = time.perf_counter()
    comparisons = compare(baseline, current)
    print(f"compare: {len(comparisons)} comparisons in {time.perf_counter() - start:.2f} s")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")


if __name__ == "__main__":
    main()
