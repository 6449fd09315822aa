"""Set-based metrics: NER entity sets (micro-F1) and HoC label sets (macro P/R/F1).

Items return counts; the corpus metric is computed from the summed counts in ``report.aggregate``.
"""

from __future__ import annotations

# HoC's ten hallmarks of cancer, as the released TextClassification.py lists them: both modes read
# these; official macro P/R/F1 average over all ten, whether or not the scored items contain each,
# strict over those the scored items' golds or answers use
HOC_LABELS = (
    "sustaining proliferative signaling",
    "evading growth suppressors",
    "resisting cell death",
    "enabling replicative immortality",
    "inducing angiogenesis",
    "activating invasion and metastasis",
    "genomic instability and mutation",
    "tumor promoting inflammation",
    "cellular energetics",
    "avoiding immune destruction",
)
NO_ENTITY_OFFICIAL = "there is no related enetity"  # sic: the sentinel in the task Definition
NO_ENTITY_SENTINELS = (NO_ENTITY_OFFICIAL, "there is no related entity")


def official_entities(text: str) -> set[str]:
    """The released code's entity set: periods removed, lowercased, then ``s[:-1].split(", ")``.

    The ``[:-1]`` meant to drop the final period, which is already gone, so it chops the last
    character of the last entity, on both sides alike.
    """
    s = text.replace(".", "").strip().lower()
    if s == NO_ENTITY_OFFICIAL:
        return set()
    return set(s[:-1].split(", "))


def strict_entities(text: str) -> set[str]:
    """One trailing period stripped, lowercased, split on commas; both sentinel spellings mean none."""
    s = text.strip().lower()
    s = s[:-1] if s.endswith(".") else s
    if s.strip() in NO_ENTITY_SENTINELS or not s.strip():
        return set()
    return {entity.strip() for entity in s.split(",") if entity.strip()}


def entity_counts(predicted: set[str], gold: set[str]) -> dict[str, float]:
    return {"tp": len(predicted & gold), "fp": len(predicted - gold), "fn": len(gold - predicted)}


def entity_f1(answer: str, reference: str) -> float:
    """F1 (0-1) of the entities of ``answer`` against those of ``reference``: comma-separated lists,
    lowercased, one trailing period dropped, "There is no related entity" for none (the strict NER
    rule). Both empty is 1.0: nothing to find, and nothing found."""
    return item_f1(strict_entities(answer), strict_entities(reference))


def item_f1(predicted: set[str], expected: set[str]) -> float:
    """One item's entity F1; 1.0 when both sets are empty."""
    if not predicted and not expected:
        return 1.0
    counts = entity_counts(predicted, expected)
    return f1_from_counts(counts["tp"], counts["fp"], counts["fn"])[2]


def f1_from_counts(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    """(precision, recall, F1) on a 0-1 scale; 0 where undefined (sklearn's zero_division=0)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def official_labels(text: str, label_set: tuple[str, ...]) -> set[str]:
    """HoC official: a label is present when it is a substring of the lowercased text."""
    lowered = text.lower()
    return {label for label in label_set if label in lowered}


def strict_labels(text: str, label_set: tuple[str, ...]) -> set[str]:
    """HoC strict: comma-separated parts matched exactly against the label set."""
    parts = {part.strip().rstrip(".").strip() for part in text.lower().split(",")}
    return {label for label in label_set if label in parts}


def label_counts(predicted: set[str], gold: set[str], label_set: tuple[str, ...]) -> dict[str, float]:
    """Per-label tp/fp/fn for one item, keyed ``<label>|tp`` etc., for macro averaging over the corpus."""
    counts: dict[str, float] = {}
    for label in label_set:
        counts[f"{label}|tp"] = float(label in predicted and label in gold)
        counts[f"{label}|fp"] = float(label in predicted and label not in gold)
        counts[f"{label}|fn"] = float(label not in predicted and label in gold)
    return counts
