"""The garbage collector around a run: what pytest-medbench loads and keeps (items, data, records)
lives until the process ends, so it is frozen out of the collector's sight at two points and given
back only where the process goes on after the run.
"""

from __future__ import annotations

import functools
import gc
import sys

import pytest

NESTED_KEY = pytest.StashKey[bool]()


def prepare(config: pytest.Config, inside_a_test: bool) -> None:
    """At configure time. A run inside another's test (an in-process pytester run) freezes nothing:
    its freeze would take the outer run's objects too. The thaw is registered before pytest's own
    check for unraisable exceptions (its plugin's pytest_configure runs after this one), so it runs
    after that check's garbage collections."""
    nested, process_ends = place_of_run(config, inside_a_test)
    config.stash[NESTED_KEY] = nested
    leave_frozen = nested or process_ends or gc.get_freeze_count() > 0
    config.add_cleanup(functools.partial(thaw, leave_frozen))


FREEZE_AT = 1_000  # items collected from which they are frozen as soon as they are: see below


def after_collection(session: pytest.Session) -> None:
    """A big run's items and data live until the process ends: move them out of the garbage
    collector's sight, so its full passes (pytest makes five at the end) do not walk them all again
    (bench/real_size.py, 35,000 items: 5.5 s of CPU to collect, 3.7 s with this), nor do the full
    passes its allocations set off while the tests run (4,000 items: about 0.1 s each). Given back
    to the collector with the rest, where the process goes on after the run (``thaw``)."""
    if len(session.items) >= FREEZE_AT and not session.config.stash.get(NESTED_KEY, True):
        gc.freeze()


def before_report(session: pytest.Session) -> None:
    """Once the tests have run, before the report is built: one full garbage collection, then what
    survives it (every module, report, record and loaded instance) is moved out of the collector's
    sight (see ``thaw`` for when it comes back). Without it the collector walks all of it again
    while the leaderboard is built, and five times more in pytest's last act (its check for
    unraisable exceptions): one pass is 0.07 s after the 99 bundled items (scipy, nltk and pytest's
    plugins loaded), 0.1 s after 4,000 items, 0.25 s after 15,000. This collection is the first of
    those, so whatever it finalizes is still reported."""
    if session.config.stash.get(NESTED_KEY, True):
        return
    gc.collect()
    gc.freeze()


def thaw(leave_frozen: bool) -> None:
    """pytest's last collections are over. Where the process goes on after this run (a program's
    ``pytest.main()``), what was frozen goes back to the collector, so nothing is kept that could
    not be freed. Left frozen: where the process ends with the run (the ``pytest`` command, an xdist
    worker), since given back, the interpreter's own last collection would walk and free it all on
    the way out (15,000 items: 1.9 s; the 99 bundled items: 0.14-0.30 s); where someone else froze before
    the run (theirs and ours stay); and in a run inside another's test, which froze nothing."""
    if not leave_frozen:
        gc.unfreeze()


def place_of_run(config: pytest.Config, inside_a_test: bool) -> tuple[bool, bool]:
    """(whether this run is inside another's test, whether the process ends with this run). Nested:
    a test of another run is running, or ``pytest.main()`` is on the stack twice (an in-process
    pytester run). The process ends with the run of an xdist worker, and with that of pytest's own
    command (``pytest.console_main`` calls ``pytest.main``, then the interpreter exits)."""
    main_calls, command = 0, False
    frame = sys._getframe()
    while frame is not None:
        main_calls += frame.f_code is pytest.main.__code__
        command = command or frame.f_code is pytest.console_main.__code__
        frame = frame.f_back
    nested = inside_a_test or main_calls > 1
    return nested, not nested and (command or hasattr(config, "workerinput"))
