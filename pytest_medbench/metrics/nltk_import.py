"""nltk, imported without the scipy.stats its package import pulls in.

``import nltk`` runs the whole package's ``__init__``, which imports ``nltk.metrics.association``,
which imports ``scipy.stats`` for one association measure (Fisher's exact test) that BLEU and the
tokenizers never use: 0.74 s of the import's 0.80 s here, where nltk without it takes 0.28 s
(``python -c "import nltk"``, Python 3.11, nltk 3.9.1, scipy 1.16). A process whose report
bootstraps a corpus metric loads scipy.stats anyway, but an xdist worker never needs it, and each
paid it (``pytest suites/ --model medbench/oracle -n 2``: 4.5-4.8 s before, 3.2 s with this and the
garbage collector's freeze; docs/performance.md). So while this thread imports nltk, ``scipy.stats``
cannot be found by nltk's own modules, and nltk keeps the stand-in it defines for that case; the
stand-in is then replaced by one that imports scipy.stats on its first call, so nltk answers as
before for any other user of it in the process. Where nltk or scipy.stats is loaded already, this
is a plain import.
"""

from __future__ import annotations

import functools
import importlib.abc
import sys
import threading
from typing import Any

DEFERRED = "scipy.stats"


class _Deferred(importlib.abc.MetaPathFinder):
    """Makes ``scipy.stats`` (and its submodules) unfindable to nltk's own modules, in the importing
    thread only. Anything else nltk's import pulls in gets it: scikit-learn, which nltk
    imports (when installed) under a ``try``, would otherwise fail half-imported, silently, and
    leave nltk's ``SklearnClassifier`` without the classes it needs."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if (
            threading.get_ident() == self.thread
            and (name == DEFERRED or name.startswith(f"{DEFERRED}."))
            and _importer().partition(".")[0] == "nltk"
        ):
            raise ModuleNotFoundError(f"{name}: deferred while nltk imports", name=name)
        return None


def _importer() -> str:
    """The module whose code asked for the import being searched: the first frame outside importlib."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith("<frozen importlib"):
        frame = frame.f_back
    return "" if frame is None else frame.f_globals.get("__name__", "")


def _fisher_exact(*args: Any, **kwargs: Any) -> Any:
    """``scipy.stats.fisher_exact``, imported on the first call."""
    from scipy.stats import fisher_exact

    return fisher_exact(*args, **kwargs)


@functools.cache
def import_nltk() -> Any:
    """The nltk package, imported (once) without loading scipy.stats."""
    if "nltk" in sys.modules or DEFERRED in sys.modules:
        import nltk

        return nltk
    finder = _Deferred()
    sys.meta_path.insert(0, finder)
    try:
        import nltk
        from nltk.metrics import association
    finally:
        sys.meta_path.remove(finder)
    association.fisher_exact = _fisher_exact
    return nltk
