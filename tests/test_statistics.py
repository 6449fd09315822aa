"""The statistics of intervals, comparisons and gates (report.stats, report.compare).

Expected values come from textbook formulas written out here, from exact enumeration, or from
scipy's own implementation of a named method, never from a bootstrap or Monte Carlo seed.
"""

from __future__ import annotations

import itertools
import json
import math
import random

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from scipy.stats import binomtest, bootstrap, permutation_test

from conftest import FIXTURES
from pytest_medbench.cli import main
from pytest_medbench.metrics.sets import f1_from_counts
from pytest_medbench.report import leaderboard, stats
from pytest_medbench.report.compare import (
    CompareError,
    NotCompared,
    compare,
    compare_runs,
    regressions,
    shortfall,
)
from pytest_medbench.report.records import ItemRecord
from pytest_medbench.report.stats import prf_arrays
from pytest_medbench.report.verdict import Verdict

RUN = json.loads((FIXTURES.parent / "tests" / "run_metadata.json").read_text())
Z975, Z80 = 1.959964, 0.841621  # normal quantiles from a printed table


def item_records(tasks: dict[tuple[str, str], list[float]]) -> list[ItemRecord]:
    """{(category, task): per-item accuracy (0/1, or epoch means)} as item records."""
    return [
        ItemRecord("meds", task, category, f"{i:03d}", scores={"accuracy": value}, passed=value == 1.0)
        for (category, task), values in tasks.items()
        for i, value in enumerate(values)
    ]


def board(tasks: dict[tuple[str, str], list[float]]) -> dict:
    """A schema-valid leaderboard of those items."""
    return leaderboard.build(RUN, item_records(tasks))


def corpus_board(counts: list[dict[str, float]]) -> dict:
    records = [
        ItemRecord(
            "meds", "task125", "ner", f"{i:03d}", scores={"f1": None}, counts=c, aggregation="micro_f1"
        )
        for i, c in enumerate(counts)
    ]
    return leaderboard.build(RUN, records)


def by_path(comparisons) -> dict:
    return {(c.scope, c.path): c for c in comparisons}


def textbook_wilson(p: float, n: float, z: float = Z975) -> tuple[float, float]:
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


# -- hand-computed values -----------------------------------------------------------------------


def test_a_one_task_category_has_its_tasks_wilson_interval_and_mcnemar_p():
    """The issue's task130: 4 items, 1 right in the baseline, all 4 right with the oracle."""
    oracle = board({("diagnosis", "task130"): [1, 1, 1, 1]})
    baseline = board({("diagnosis", "task130"): [0, 1, 0, 0]})
    wilson = binomtest(1, 4).proportion_ci(method="wilson")  # scipy's own Wilson interval
    for section in ("tasks", "categories", "benchmarks"):
        metric = baseline[section][0]["metrics"]["accuracy"]
        assert metric["value"] == 25.0 and metric["n"] == 4
        assert metric["ci95"] == pytest.approx([100 * wilson.low, 100 * wilson.high], abs=1e-3)
    comparisons = by_path(compare(oracle, baseline))
    task = comparisons[("task", "meds.task130.accuracy")]
    assert task.p_value == pytest.approx(0.25)  # 3 discordant pairs, all one way: 2 / 2**3
    for scope, path in (("category", "meds.diagnosis.accuracy"), ("benchmark", "meds.accuracy")):
        other = comparisons[(scope, path)]
        assert (other.old, other.new, other.delta, other.ci95, other.p_value, other.n_shared) == (
            task.old,
            task.new,
            task.delta,
            task.ci95,
            task.p_value,
            task.n_shared,
        )
        assert other.detectable_drop is None and not other.regressed(2, 0.05)
    assert task.verdict(2, 0.05) == "cannot detect any drop on 4 items"


def test_a_category_pools_its_tasks_stratified_at_the_kish_effective_n():
    run = board({("mcqa", "task57"): [1, 0, 0, 0], ("mcqa", "task58"): [1] * 12 + [0] * 4})
    (category,) = run["categories"]
    p = (1 / 4 + 12 / 16) / 2  # the unweighted mean of the two tasks, as the leaderboard averages
    n_eff = 1 / (0.5**2 / 4 + 0.5**2 / 16)  # Kish: 12.8
    metric = category["metrics"]["accuracy"]
    assert metric["value"] == pytest.approx(100 * p) and metric["n"] == 20
    assert metric["ci95"] == pytest.approx([100 * x for x in textbook_wilson(p, n_eff)], abs=1e-3)


def test_mcnemar_is_exact_for_a_binary_task_and_agresti_min_gives_the_change_interval():
    old = [1] * 8 + [0] * 2 + [1] * 15 + [0] * 5  # 30 items
    new = [0] * 8 + [1] * 2 + [1] * 15 + [0] * 5  # 8 right answers lost, 2 gained
    (task, *_) = compare(board({("mcqa", "task57"): old}), board({("mcqa", "task57"): new}))
    assert task.test == "mcnemar exact"
    exact = 2 * sum(math.comb(10, k) for k in range(3)) / 2**10  # two-sided binomial tail, 2 of 10
    assert task.p_value == pytest.approx(exact, abs=1e-6)
    # Agresti & Min (2005): add 1/2 to every cell of the 2x2 table, then Wald
    b, c, n = 8 + 0.5, 2 + 0.5, 30 + 2
    centre = (c - b) / n
    se = math.sqrt((b + c) - (c - b) ** 2 / n) / n
    assert task.delta == pytest.approx(-20.0)
    assert task.ci95 == pytest.approx((100 * (centre - Z975 * se), 100 * (centre + Z975 * se)), abs=1e-2)


def test_graded_changes_get_the_exact_sign_flip_p_value():
    old = [0.9, 0.8, 0.7, 0.95, 0.6]
    new = [0.6, 0.6, 0.6, 0.55, 0.65]
    (task, *_) = compare(board({("mcqa", "task57"): old}), board({("mcqa", "task57"): new}))
    differences = [b - a for a, b in zip(old, new, strict=True)]
    observed = abs(sum(differences))
    flips = list(itertools.product((1, -1), repeat=len(differences)))
    extreme = sum(
        abs(sum(s * d for s, d in zip(signs, differences, strict=True))) >= observed - 1e-12
        for signs in flips
    )
    assert task.test == "sign-flip exact"
    assert task.p_value == pytest.approx(extreme / len(flips))


def test_fractional_epoch_scores_are_seen():
    """The issue's probe: 20 items from 1.0 to 0.5 under --medbench-epochs 2 gave p = 1.0."""
    (task, *_) = compare(board({("mcqa", "task57"): [1.0] * 20}), board({("mcqa", "task57"): [0.5] * 20}))
    assert task.delta == -50.0
    # exact p = 2 / 2**20; no Monte Carlo resample is as extreme, so Hoeffding's bound for 20 signs of
    # 0.5/20 each: 2 exp(-0.5**2 / (2 * 20 * (0.5/20)**2)) = 2 exp(-10)
    assert task.p_value == pytest.approx(2 * math.exp(-10), rel=1e-3) and task.regressed(2, 0.05)
    fractional = board({("mcqa", "task57"): [0.5] * 20})["tasks"][0]["metrics"]["accuracy"]
    assert fractional["ci95"][0] < 50 < fractional["ci95"][1]  # a t interval, not Wilson's for 0/1


def test_benjamini_hochberg_over_the_tasks(tmp_path, capsys):
    baseline = board(
        {("mcqa", "task57"): [1] * 6 + [0] * 4, ("mcqa", "task58"): [1] * 10, ("mcqa", "task59"): [1] * 12}
    )
    current = board(
        {("mcqa", "task57"): [0] * 10, ("mcqa", "task58"): [1] * 10, ("mcqa", "task59"): [0] * 10 + [1] * 2}
    )
    tasks = {c.name: c for c in compare(baseline, current) if c.scope == "task"}
    raw = {"task57": 2 / 2**6, "task58": 1.0, "task59": 2 / 2**10}  # exact McNemar, all one way
    assert {name: c.p_value for name, c in tasks.items()} == pytest.approx(raw, abs=1e-6)
    # step-up by hand: sorted p (2/2**10, 2/2**6, 1) times m / rank = (3, 3/2, 1), then running minimum
    adjusted = {"task59": 3 * 2 / 2**10, "task57": 1.5 * 2 / 2**6, "task58": 1.0}
    assert {name: c.p_adjusted for name, c in tasks.items()} == pytest.approx(adjusted, abs=1e-6)
    assert tasks["task57"].regressed(2, 0.05) and not tasks["task57"].regressed(2, 0.04)  # 0.0469
    (tmp_path / "base.json").write_text(json.dumps(baseline))
    (tmp_path / "current.json").write_text(json.dumps(current))
    command = ["compare", str(tmp_path / "base.json"), str(tmp_path / "current.json"), "--alpha"]
    assert main([*command, "0.04"]) == 1  # task59 (adjusted 0.0059) still regressed
    assert "FAIL: meds.task59.accuracy; meds.mcqa.accuracy; meds.accuracy (max" in capsys.readouterr().out


def test_detectable_drop_from_the_power_formula():
    """A binary task compared with itself: no noise, so delta = c^2 K / (1 + c^2 K), K = 1/n."""
    same = board({("mcqa", "task57"): [1, 0] * 50})
    (task, *_) = compare(same, same)
    c2, k = (Z975 + Z80) ** 2, 1 / 100
    assert task.detectable_drop == pytest.approx(100 * c2 * k / (1 + c2 * k), abs=1e-3)  # 7.28 points
    assert task.verdict(2, 0.05) == f"cannot detect a drop under {task.detectable_drop:.1f} points"
    assert task.verdict(8, 0.05) == "no regression"
    # 5 answers lost and 1 gained on 100 items: 1 loss and the gain cancel out, noise 2 * 1/100 per
    # item; the other 4 losses are the drop, not noise
    old = [1, 1, 1, 1, 1, 0] + [1] * 94
    new = [0, 0, 0, 0, 0, 1] + [1] * 94
    (task, *_) = compare(board({("mcqa", "task57"): old}), board({("mcqa", "task57"): new}))
    noise = 2 * 1 / 100 / 100  # per-item variance over n
    a = 1 + c2 * k
    expected = (c2 * k + math.sqrt((c2 * k) ** 2 + 4 * a * c2 * noise)) / (2 * a)
    assert task.detectable_drop == pytest.approx(100 * expected, abs=1e-3)  # 8.9 points
    small = board({("mcqa", "task57"): [1, 0, 1, 1, 0]})
    assert compare(small, small)[0].detectable_drop is None  # min p on 5 items is 2 / 2**5 > 0.05


def test_the_monte_carlo_sign_flip_agrees_with_scipys_permutation_test():
    rng = random.Random(7)
    old = [rng.random() for _ in range(40)]
    new = [min(1.0, max(0.0, v + rng.gauss(-0.04, 0.15))) for v in old]
    (task, *_) = compare(board({("mcqa", "task57"): old}), board({("mcqa", "task57"): new}))
    reference = permutation_test(
        (np.array(old), np.array(new)),
        lambda x, y, axis: np.mean(y, axis=axis) - np.mean(x, axis=axis),
        permutation_type="samples",
        n_resamples=99_999,
        vectorized=True,
        random_state=12345,
    )
    assert task.test == "sign-flip" and 0.01 < reference.pvalue < 0.5
    assert task.p_value == pytest.approx(reference.pvalue, abs=0.015)  # > 5 Monte Carlo standard errors


@given(st.lists(st.tuples(*[st.integers(0, 5)] * 3), min_size=1, max_size=20))
def test_the_array_f1_is_the_scalar_rule(counts):
    tp, fp, fn = (np.array(column, dtype=float) for column in zip(*counts, strict=True))
    arrays = prf_arrays(tp, fp, fn)
    for i, row in enumerate(counts):
        assert [float(a[i]) for a in arrays] == pytest.approx(f1_from_counts(*row))


def test_the_quantiles_taken_without_scipy_stats_are_scipy_stats_own():
    """report.stats avoids importing scipy.stats for them (0.75 s a run): the values must be the
    very floats scipy.stats gives, so no interval moves."""
    assert scipy_stats.norm.ppf(0.5 + stats.CONFIDENCE / 2) == stats._Z
    for df in [*range(1, 400), 1_000, 14_999, 10**6]:
        assert stats._t_quantile(0.975, df) == scipy_stats.t.ppf(0.975, df)


def test_corpus_intervals_agree_with_an_independent_bootstrap():
    rng = random.Random(3)
    old = [{"tp": rng.randint(0, 3), "fp": rng.randint(0, 2), "fn": rng.randint(0, 2)} for _ in range(40)]
    new = [{k: max(0, v + rng.choice((-1, 0, 0, 1))) for k, v in c.items()} for c in old]
    columns = np.array([[c["tp"], c["fp"], c["fn"]] for c in old], dtype=float)
    changed = np.array([[c["tp"], c["fp"], c["fn"]] for c in new], dtype=float)

    def micro_f1(rows, axis=-1):
        tp, fp, fn = (rows[..., k].sum(axis=-1) for k in range(3))
        return 2 * tp / (2 * tp + fp + fn)

    def f1_of(indices, axis=-1):
        return micro_f1(columns[indices.astype(int)])

    def change_of(indices, axis=-1):
        rows = indices.astype(int)
        return micro_f1(changed[rows]) - micro_f1(columns[rows])

    items = (np.arange(40.0),)
    common = {"vectorized": True, "method": "percentile", "n_resamples": 20_000, "random_state": 11}
    reference = bootstrap(items, f1_of, **common).confidence_interval
    metric = corpus_board(old)["tasks"][0]["metrics"]["f1"]
    assert metric["ci95"] == pytest.approx([100 * reference.low, 100 * reference.high], abs=2.5)
    assert metric["ci95"][1] - metric["ci95"][0] > 10
    reference = bootstrap(items, change_of, **common).confidence_interval
    f1 = by_path(compare(corpus_board(old), corpus_board(new)))[("task", "meds.task125.f1")]
    assert f1.ci95 == pytest.approx((100 * reference.low, 100 * reference.high), abs=2.5)


def test_corpus_f1_is_recomputed_on_each_sign_flip():
    old = [{"tp": 2, "fp": 0, "fn": 0}] * 3 + [{"tp": 1, "fp": 1, "fn": 0}] * 2
    new = [{"tp": 0, "fp": 1, "fn": 2}] * 3 + [{"tp": 1, "fp": 1, "fn": 0}] * 2
    comparisons = by_path(compare(corpus_board(old), corpus_board(new)))
    f1 = comparisons[("task", "meds.task125.f1")]

    def micro_f1(counts):
        tp, fp, fn = (sum(c[k] for c in counts) for k in ("tp", "fp", "fn"))
        return 2 * tp / (2 * tp + fp + fn)

    assert f1.old == pytest.approx(100 * micro_f1(old), abs=1e-3)
    assert f1.new == pytest.approx(100 * micro_f1(new), abs=1e-3)
    # 3 changed items, 8 swap patterns; the observed one and its mirror are the extremes: 2/8
    assert f1.test == "sign-flip exact" and f1.p_value == pytest.approx(2 / 8)
    run = corpus_board([{"tp": 0, "fp": 1, "fn": 1}] * 4)["tasks"][0]["metrics"]["f1"]
    assert run["value"] == 0 and run["ci95"][1] > 0  # F1 0 on every item still has an honest interval


# -- properties ---------------------------------------------------------------------------------

OUTCOMES = st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=30)
EPOCH_MEANS = st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), min_size=1, max_size=30)
RUNS = st.dictionaries(
    st.tuples(st.sampled_from(["mcqa", "diagnosis"]), st.sampled_from(["task57", "task58", "task130"])),
    OUTCOMES | EPOCH_MEANS,
    min_size=1,
    max_size=4,
).filter(lambda tasks: len({task for _, task in tasks}) == len(tasks))


@settings(max_examples=40)
@given(RUNS)
def test_a_run_compared_with_itself_never_regresses(tasks):
    run = board(tasks)
    for c in compare(run, run):
        assert (c.delta, c.p_value, c.p_adjusted) == (0.0, 1.0, 1.0)
        assert c.ci95[0] < 0 < c.ci95[1]  # no collapse to a point
        assert not c.regressed(0, 0.05)


@settings(max_examples=40)
@given(OUTCOMES | EPOCH_MEANS, OUTCOMES | EPOCH_MEANS)
def test_a_one_task_category_equals_its_task(old, new):
    new = (new * len(old))[: len(old)]
    before, after = board({("diagnosis", "task130"): old}), board({("diagnosis", "task130"): new})
    for run in (before, after):
        task = run["tasks"][0]["metrics"]["accuracy"]
        assert (
            run["categories"][0]["metrics"]["accuracy"] == task == run["benchmarks"][0]["metrics"]["accuracy"]
        )
    comparisons = compare(before, after)
    fields = {
        (c.old, c.new, c.delta, c.ci95, c.p_value, c.p_adjusted, c.detectable_drop, c.n_shared)
        for c in comparisons
    }
    assert len(comparisons) == 3 and len(fields) == 1


@settings(max_examples=30)
@given(RUNS, st.randoms(use_true_random=False))
def test_permuting_item_order_changes_nothing(tasks, rng: random.Random):
    other = {key: [1.0 - v for v in values] for key, values in tasks.items()}
    expected = compare(board(tasks), board(other))
    shuffled_old, shuffled_new = board(tasks), board(other)
    for run in (shuffled_old, shuffled_new):
        for key, items in run["items"].items():
            order = list(items.items())
            rng.shuffle(order)
            run["items"][key] = dict(order)
    assert compare(shuffled_old, shuffled_new) == expected
    records = item_records(tasks)
    rng.shuffle(records)
    shuffled = leaderboard.build(RUN, records)
    assert {k: shuffled[k] for k in ("tasks", "categories", "benchmarks")} == {
        k: board(tasks)[k] for k in ("tasks", "categories", "benchmarks")
    }


MIN_ITEMS = math.ceil(1 + math.log2(1 / 0.05))  # smallest n whose most extreme p, 2 / 2**n, is < 0.05


@settings(max_examples=60)
@given(st.integers(1, 40), st.integers(3, 60), st.booleans())
@example(10, 50, True)  # 5 of 10 flipped: past the normal approximation's size, not the exact test's
@example(6, 60, True)
@example(5, 50, False)
def test_a_uniform_drop_is_flagged_once_n_is_past_the_detectable_size(n, points, binary):
    """Every item drops by ``points`` (graded), or that share of the items flips from right to
    wrong (binary). It is flagged exactly when the test can reach alpha on that many changed items,
    and always once n is past the size at which ``detectable_drop`` falls below the drop."""
    if binary:
        flipped = max(1, round(n * points / 100))
        old, new = [1.0] * n, [0.0] * flipped + [1.0] * (n - flipped)
        changed, drop = flipped, 100 * flipped / n
    else:
        old = [1.0] * n
        new = [1.0 - points / 100] * n
        changed, drop = n, points
    (task, *_) = compare(board({("mcqa", "task57"): old}), board({("mcqa", "task57"): new}))
    assert task.delta == pytest.approx(-drop, abs=1e-3)
    assert task.regressed(2, 0.05) == (changed >= MIN_ITEMS)
    if task.detectable_drop is None:
        assert not task.regressed(2, 0.05) and n < MIN_ITEMS
    elif task.detectable_drop <= drop:
        assert task.regressed(2, 0.05)


@settings(max_examples=30)
@given(st.lists(st.sampled_from([0.0, 1 / 3, 2 / 3]), min_size=MIN_ITEMS, max_size=30))
@example(new=[2 / 3] * MIN_ITEMS)  # found by hypothesis: p = 2/2**6, yet the interval reached over 0
def test_epochs_with_fractional_scores_are_seen(new):
    """Three epochs: an item that lost one or two of its three right answers counts."""
    (task, *_) = compare(board({("mcqa", "task57"): [1.0] * len(new)}), board({("mcqa", "task57"): new}))
    assert task.delta < 0 and task.p_value < 0.05 and task.ci95[1] < 0


def test_a_tiny_change_in_a_continuous_score_keeps_the_interval_of_no_change():
    """ROUGE-L 0.37 on 20 items, one of which moved by 0.001: Agresti-Min's pad of +-1 at weight 1/2 gives,
    by hand, variance ((0.001^2 + 1) / 22 - (0.001 / 22)^2) / 22, so 1.96 x 0.04545 = 8.91 points
    each side, the same as with no change at all; a pad at the observed difference collapsed it."""

    def graded(values):
        rows = np.array(values, dtype=float)[:, None]
        return stats.Stratum(1.0, rows, lambda totals: totals[..., 0], False)

    old = [0.37] * 20
    for new in (old, [0.371] + [0.37] * 19):
        result = stats.change([(graded(old), graded(new))], 0.05)
        assert result.low == pytest.approx(-0.0891, abs=2e-4)
        assert result.high == pytest.approx(0.0891, abs=2e-4)


# -- the command and the in-run baseline --------------------------------------------------------


def test_compare_json_has_every_field_and_the_same_verdict_as_the_rule(tmp_path):
    base = board({("mcqa", "task57"): [1] * 30, ("diagnosis", "task130"): [1, 1, 0, 1]})
    worse = board({("mcqa", "task57"): [0] * 10 + [1] * 20, ("diagnosis", "task130"): [0, 0, 0, 1]})
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "worse.json").write_text(json.dumps(worse))
    out = tmp_path / "compare.json"
    assert (
        main(["compare", str(tmp_path / "base.json"), str(tmp_path / "worse.json"), "--json", str(out)]) == 1
    )
    document = json.loads(out.read_text())
    expected = regressions(compare(base, worse), 2, 0.05)
    assert document["regressed"] == [c.path for c in expected]
    rows = {row["metric"]: row for row in document["comparisons"]}
    task57 = rows["meds.task57.accuracy"]
    assert task57["baseline"] == 100.0 and task57["current"] == pytest.approx(200 / 3, abs=1e-3)
    assert task57["p_value"] == pytest.approx(2 / 2**10, abs=1e-6) and task57["n"] == 30
    assert task57["verdict"] == "regressed" and task57["change_ci95"][1] < 0
    assert set(task57) == {
        "metric", "scope", "baseline", "current", "change", "change_ci95",
        "p_value", "p_adjusted", "detectable_drop", "n", "test", "verdict",
    }  # fmt: skip
    assert rows["meds.task130.accuracy"]["verdict"] == "cannot detect any drop on 4 items"
    assert rows["meds.task130.accuracy"]["detectable_drop"] is None


def test_the_in_run_baseline_and_the_command_give_one_verdict_on_the_bundled_fixtures(
    run_suites, tmp_path, capsys
):
    """The issue's probe: oracle against the baseline model on the fixtures. Every one-task category
    now has its task's value, interval and p-value, and the two ways of comparing agree line by line."""
    selection = ("-k", "task130 or task57 or task58 or medr")
    run_suites(*selection, "--model", "medbench/oracle", report="oracle.json")
    baseline = ("--medbench-baseline", str(tmp_path / "oracle.json"), "--medbench-alpha", "0.1")
    result, current = run_suites(*selection, *baseline)
    oracle = json.loads((tmp_path / "oracle.json").read_text())
    in_run = result.outlines[
        result.outlines.index(next(x for x in result.outlines if "comparison with" in x)) + 1 :
    ]
    capsys.readouterr()  # drop the in-process runs' output
    capsys.readouterr()  # drop the in-process runs' output
    assert (
        main(["compare", str(tmp_path / "oracle.json"), str(tmp_path / "leaderboard.json"), "--alpha", "0.1"])
        == result.ret
        == 1
    )
    printed = capsys.readouterr().out.splitlines()
    assert printed[:-1] == in_run[: len(printed) - 1]  # the same table, row for row
    failed = printed[-1].removeprefix("medbench compare: FAIL: ").split(" (max drop")[0].split("; ")
    assert [part.split(" dropped")[0] for part in result.outlines[-1].split(": ", 2)[2].split("; ")] == failed

    comparisons = by_path(compare(oracle, current))
    task130 = comparisons[("task", "meds.task130.accuracy")]
    diagnosis = comparisons[("category", "meds.diagnosis.accuracy")]
    assert (task130.p_value, task130.ci95) == (diagnosis.p_value, diagnosis.ci95) == (0.25, diagnosis.ci95)
    oracle_diagnosis = comparisons[("task", "medr.oracle_diagnosis.accuracy")]
    assert oracle_diagnosis.p_value == 0.125 and oracle_diagnosis.detectable_drop is None  # 4 cases
    tasks = {(t["benchmark"], t["task"]): t for t in current["tasks"]}
    for category in current["categories"]:
        members = [
            t
            for t in current["tasks"]
            if (t["benchmark"], t["category"]) == (category["benchmark"], category["category"])
        ]
        if len(members) == 1:
            assert category["metrics"] == tasks[(members[0]["benchmark"], members[0]["task"])]["metrics"]


def test_label_sets_that_differ_between_runs_are_each_runs_own_macro():
    """Each run's macro runs over the labels its items carry counts for (strict HoC counts only the
    labels an answer or gold uses), so a comparison's values are the two leaderboards' own."""

    def hoc(counts: list[dict]) -> dict:
        records = [
            ItemRecord("meds", "task106", "text_classification", str(i), counts=c, aggregation="macro_f1")
            for i, c in enumerate(counts)
        ]
        return leaderboard.build(RUN, records)

    old = [{"a|tp": 1, "a|fp": 0, "a|fn": 0}] * 2
    new = [{"a|tp": 1, "a|fp": 0, "a|fn": 0, "b|tp": 0, "b|fp": 1, "b|fn": 0}] * 2
    f1 = by_path(compare(hoc(old), hoc(new)))[("task", "meds.task106.f1")]
    # new: label a F1 1, label b F1 0 -> macro 0.5; old: only label a is counted, F1 1 -> macro 1
    assert (f1.old, f1.new) == (100.0, 50.0)
    assert hoc(old)["tasks"][0]["metrics"]["f1"]["value"] == 100.0


def test_a_strict_hoc_resample_is_scored_over_the_labels_it_carries():
    """Strict HoC: the oracle answers every item's gold exactly, so every resample scores 100 and
    the interval is the Wilson interval at n = 4 (before, a resample without some label scored that
    label 0: [33.3, 100])."""
    from scipy.stats import binomtest

    labels = ["a", "b", "c", "d"]
    counts = [{f"{label}|tp": 1.0, f"{label}|fp": 0.0, f"{label}|fn": 0.0} for label in labels]
    records = [
        ItemRecord("meds", "task106", "text_classification", str(i), counts=c, aggregation="macro_f1")
        for i, c in enumerate(counts)
    ]
    f1 = leaderboard.build(RUN, records)["tasks"][0]["metrics"]["f1"]
    wilson = binomtest(4, 4).proportion_ci(method="wilson")
    assert f1["value"] == 100.0
    assert f1["ci95"] == [pytest.approx(100 * wilson.low, abs=1e-3), 100.0]


def test_a_metric_scored_as_corpus_in_one_run_only_is_a_clear_error():
    plain = board({("ner", "task125"): [1.0, 0.0]})
    plain["tasks"][0]["metrics"]["f1"] = plain["tasks"][0]["metrics"].pop("accuracy")
    for item in plain["items"]["meds/task125"].values():
        item["scores"] = {"f1": item["scores"]["accuracy"]}
    counted = corpus_board([{"tp": 1, "fp": 0, "fn": 0}, {"tp": 0, "fp": 1, "fn": 1}])
    with pytest.raises(
        CompareError, match=r"meds\.task125: f1 is a corpus metric \(item counts\) in one run only"
    ):
        compare(plain, counted)


# -- what a comparison could not compare ------------------------------------------------------------


def records_of(benchmark: str, category: str, task: str, ids: range, **fields) -> list[ItemRecord]:
    return [ItemRecord(benchmark, task, category, f"{i:03d}", **fields) for i in ids]


def test_baseline_metrics_the_run_could_not_compare_fail_the_comparison_and_say_why():
    right = {"scores": {"accuracy": 1.0}, "passed": True}
    errored = {"error": {"kind": "server", "message": "HTTP 500"}}
    judged = {"scores": {"accuracy": 1.0, "efficiency": 0.5}, "passed": True}
    unjudged = {"scores": {"accuracy": 1.0, "efficiency": None}, "passed": True}
    base = leaderboard.build(
        RUN,
        records_of("meds", "mcqa", "task57", range(8), **right)
        + records_of("meds", "mcqa", "task58", range(8), **right)
        + records_of("medr", "diagnosis", "oracle_diagnosis", range(4), **judged)
        + records_of("custom", "own", "own", range(4), **right),
    )
    run = leaderboard.build(
        RUN,
        records_of("meds", "mcqa", "task57", range(8), **right)
        + records_of("meds", "mcqa", "task58", range(8), **errored)  # every item a model error
        + records_of("medr", "diagnosis", "oracle_diagnosis", range(4), **unjudged)  # no judge
        + records_of("custom", "own", "own", range(4, 8), **right),  # other items than the baseline's
    )
    comparisons, not_compared = compare_runs(base, run)
    assert [(c.path, c.delta) for c in comparisons if c.scope == "task"] == [
        ("medr.oracle_diagnosis.accuracy", 0.0),
        ("meds.task57.accuracy", 0.0),
    ]
    assert not_compared == [  # in the leaderboard's order of tasks
        NotCompared("custom.own.accuracy", "no item scored by both runs"),
        NotCompared("medr.oracle_diagnosis.efficiency", "not computed in this run"),
        NotCompared("meds.task58.accuracy", "this run scored none of the task's items"),
    ]
    assert regressions(comparisons, 2, 0.05) == []
    assert shortfall(comparisons, not_compared) == [
        "3 metrics of the baseline not compared (no item scored by both runs: custom.own.accuracy; "
        "not computed in this run: medr.oracle_diagnosis.efficiency; "
        "this run scored none of the task's items: meds.task58.accuracy)"
    ]
    verdict = Verdict([], comparisons, 2, 0.05, "base.json", not_compared=not_compared)
    assert not verdict.passed and verdict.exit_code == 1
    assert verdict.line() == "medbench verdict: FAIL: " + shortfall(comparisons, not_compared)[0]
    # a run whose every item errored compared nothing, and says so
    down = leaderboard.build(RUN, records_of("meds", "mcqa", "task57", range(8), **errored))
    comparisons, not_compared = compare_runs(base, down)
    assert comparisons == [] and shortfall(comparisons, not_compared) == [
        "nothing compared with the baseline (this run scored none of the task's items: meds.task57.accuracy)"
    ]
    # a baseline that shares no task with the run is not a baseline for it: a usage error
    with pytest.raises(CompareError, match=r"the baseline has none of this run's tasks"):
        compare_runs(board({("mcqa", "task60"): [1, 0]}), board({("mcqa", "task61"): [1, 0]}))
    # without a baseline there is no comparison to fall short
    assert Verdict([], [], 2, 0.05).passed


def test_a_corpus_item_that_counted_nothing_is_still_compared():
    """Strict HoC counts only the labels an item's gold or answer uses, so an item with none on either
    side has empty counts. It is still one of the task's items: a later run that answers it with a
    wrong hallmark must be compared on it (before, it was left out: n 1 and no change)."""

    def hoc(counts: list[dict]) -> dict:
        records = [
            ItemRecord("meds", "task106", "text_classification", str(i), counts=c, aggregation="macro_f1")
            for i, c in enumerate(counts)
        ]
        return leaderboard.build(RUN, records)

    right = {"a|tp": 1.0, "a|fp": 0.0, "a|fn": 0.0}
    wrong = {"b|tp": 0.0, "b|fp": 1.0, "b|fn": 0.0}
    old, new = hoc([right, {}, {}, {}]), hoc([right, wrong, wrong, wrong])
    f1 = by_path(compare(old, new))[("task", "meds.task106.f1")]
    # old: label a alone, F1 1; new: label a F1 1, label b (3 false positives) F1 0: macro 0.5
    assert (f1.old, f1.new, f1.n_shared) == (100.0, 50.0, 4)
    assert (old["tasks"][0]["metrics"]["f1"]["value"], new["tasks"][0]["metrics"]["f1"]["value"]) == (
        100.0,
        50.0,
    )
