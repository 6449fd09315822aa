"""Evidence for the judges: the pluggable hook, and the shipped BM25 search over a local corpus."""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import pytest

NO_EVIDENCE = "No external evidence was retrieved; judge from the case and established medical knowledge."
_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def corpus_files(folder: Path) -> list[Path]:
    """The files a BM25 corpus reads: every .txt and .md file under ``folder``, in a fixed order."""
    return sorted(p for p in folder.rglob("*") if p.suffix in (".txt", ".md") and p.is_file())


def corpus_digest(folder: Path) -> str:
    """sha256 over the corpus files' names and contents: the leaderboard records it, since verdicts
    judged on other evidence are not comparable (the folder's path alone says nothing of that)."""
    import hashlib

    from ..data.files import sha256_file

    digest = hashlib.sha256()
    for path in corpus_files(folder):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


class BM25Corpus:
    """Okapi BM25 (k1=1.5, b=0.75) over the paragraphs of every .txt / .md file under a folder."""

    def __init__(self, folder: Path, k1: float = 1.5, b: float = 0.75) -> None:
        self.folder = folder
        self.k1, self.b = k1, b
        self.passages: list[str] = []
        for path in corpus_files(folder):
            text = path.read_text(encoding="utf-8", errors="replace")
            self.passages += [part.strip() for part in re.split(r"\n\s*\n", text) if part.strip()]
        self._counts = [Counter(tokens(passage)) for passage in self.passages]
        self._lengths = [sum(c.values()) for c in self._counts]
        self._average = sum(self._lengths) / len(self._lengths) if self._lengths else 0.0
        frequency = Counter(term for counts in self._counts for term in counts)
        n = len(self.passages)
        self._idf = {term: math.log(1 + (n - df + 0.5) / (df + 0.5)) for term, df in frequency.items()}

    def search(self, query: str, k: int = 3) -> list[str]:
        terms = tokens(query)
        scored = []
        for index, counts in enumerate(self._counts):
            norm = self.k1 * (1 - self.b + self.b * self._lengths[index] / (self._average or 1))
            score = sum(
                self._idf.get(t, 0.0) * counts[t] * (self.k1 + 1) / (counts[t] + norm)
                for t in terms
                if counts[t]
            )
            if score > 0:
                scored.append((-score, index))
        return [self.passages[index] for _, index in sorted(scored)[:k]]


class BM25Evidence:
    """The built-in evidence plugin, registered when ``--medbench-evidence-dir`` is given."""

    def __init__(self, folder: Path) -> None:
        self.corpus = BM25Corpus(folder)

    @pytest.hookimpl(trylast=True)
    def pytest_medbench_evidence(self, query: str, k: int, config: pytest.Config) -> str | None:
        return "\n\n".join(self.corpus.search(query, k)) or None
