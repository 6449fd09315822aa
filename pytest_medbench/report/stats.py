"""The statistics of one metric at any level: intervals for one run, paired tests for two.

A task, a category and a benchmark are all a list of strata, one per task, each weighted as the
level's value weights that task (a category averages its tasks, a benchmark its categories). So a
category of one task is computed exactly as that task: same value, interval and p-value.

One method per kind of metric (docs/ci.md has a worked example of each):

- proportion (every item 0 or 1): run interval Wilson at Kish's effective n; change interval
  Agresti-Min; test McNemar's exact test (one task), the sign-flip test it is a case of (several).
- mean (graded scores, epoch means): run interval t, its variance with pseudo-items 0 and 1; change
  interval Agresti-Min's pseudo-differences on the graded differences; test sign-flip.
- corpus (NER micro-F1, HoC macro P/R/F1): run interval stratified bootstrap percentile; change
  interval stratified paired bootstrap; test sign-flip, the metric recomputed on each flip.

The sign-flip (paired permutation) test swaps each item's two answers at random, which is the null
of "both runs are exchangeable on every item"; it is exact where 2^n <= RESAMPLES and a seeded Monte
Carlo beyond. Values here are on a 0-1 scale; the report layer turns them into percent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

CORPUS_NAMES = ("precision", "recall", "f1")
RESAMPLES = 9999  # sign-flip test: exact up to 13 changed items, Monte Carlo beyond
BOOTSTRAP_RESAMPLES = 2000
SEED = 0  # the same items always give the same interval and p-value
BATCH_CELLS = 4_000_000  # numbers a batch of resamples may copy (32 MB of float64)
POWER = 0.80
CONFIDENCE = 0.95
# scipy.stats.norm.ppf(0.975) as a literal (tests/test_statistics.py pins it): importing scipy.stats
# costs 0.75 s, which a run whose metrics are all proportions (Wilson, no scipy) would pay for this
# number alone. statistics.NormalDist gives 1.9599639845400536, one ulp off, so intervals would move.
_Z = 1.959963984540054


@dataclass(frozen=True)
class Stratum:
    """One task's items for one metric: rows are items, columns the metric's components."""

    weight: float
    rows: np.ndarray  # items x components
    reduce: Callable[[np.ndarray], np.ndarray]  # component totals (..., k) -> metric (...) on 0-1
    corpus: bool  # corpus metrics sum their components over items; the others take the mean

    @property
    def n(self) -> int:
        return len(self.rows)

    def totals(self, rows: np.ndarray) -> np.ndarray:
        return rows.sum(axis=-2) if self.corpus else rows.mean(axis=-2)

    def value(self) -> float:
        return float(self.reduce(self.totals(self.rows)))


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class Change:
    old: float
    new: float
    delta: float
    low: float
    high: float
    p_value: float
    detectable_drop: float | None  # None: no drop, however large, can reach alpha on these items
    n: int
    method: str


# -- strata from item records ---------------------------------------------------------------------


def metric_names(items: list[dict]) -> list[str]:
    """The metrics a task's items can be reduced to: the corpus triple when items carry counts (a
    corpus item carries them even when it counted nothing: a strict HoC item with no label)."""
    if any("counts" in item for item in items):
        return list(CORPUS_NAMES)
    return sorted({name for item in items for name, value in item["scores"].items() if value is not None})


def stratum(
    items: list[dict], metric: str, weight: float = 1.0, keys: list[str] | None = None
) -> Stratum | None:
    """The stratum of one task's scored items (dicts with ``scores`` and ``counts``) for ``metric``;
    a corpus metric's columns are ``keys`` (default: every count key the items have)."""
    if metric in CORPUS_NAMES and any("counts" in item for item in items):
        keys = keys or _count_keys(items)
        if not keys:  # no item counted anything (strict HoC, no label on any side): no value
            return None
        labels = _labels(keys)
        rows = [
            [*(counts.get(k, 0.0) for k in keys), *(float(f"{label}|tp" in counts) for label in labels)]
            for counts in (item.get("counts", {}) for item in items)
        ]
        columns = len(keys) + len(labels)
        reducer = _corpus_reducer(keys, metric)
        return Stratum(weight, np.array(rows, dtype=float).reshape(len(items), columns), reducer, True)
    values = [v for item in items if (v := item["scores"].get(metric)) is not None]
    if not values:
        return None
    return Stratum(weight, np.array(values, dtype=float)[:, None], _first_column, False)


def paired_strata(
    old_items: list[dict], new_items: list[dict], metric: str, weight: float = 1.0
) -> tuple[Stratum, Stratum] | None:
    """(old, new) strata on the items both runs could score for ``metric``, in the same order.
    Raises ValueError when one run has corpus counts for it and the other has not."""
    both = [(o, n) for o, n in zip(old_items, new_items, strict=True) if _has(o, metric) and _has(n, metric)]
    if not both:
        return None
    olds, news = [o for o, _ in both], [n for _, n in both]
    keys = _count_keys(olds + news)
    old, new = stratum(olds, metric, weight, keys), stratum(news, metric, weight, keys)
    if old is None or new is None:
        return None
    if old.corpus != new.corpus:
        raise ValueError(f"{metric} is a corpus metric (item counts) in one run only")
    return old, new


def _count_keys(items: list[dict]) -> list[str]:
    return sorted({key for item in items for key in item.get("counts", {})})


def _has(item: dict, metric: str) -> bool:
    return item["scores"].get(metric) is not None or (metric in CORPUS_NAMES and "counts" in item)


def _first_column(totals: np.ndarray) -> np.ndarray:
    return totals[..., 0]


def prf_arrays(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[np.ndarray, ...]:
    """``metrics.sets.f1_from_counts`` over arrays (0 where undefined). Resampling calls it for
    every resample: np.vectorize of the scalar rule spent 5.9 of the 16.7 s that
    `python bench/statistics.py` took to compare; the tests check that both agree."""
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return precision, recall, f1


def _labels(keys: list[str]) -> list[str]:
    """A macro metric's labels (count keys ``<label>|tp`` ...); none for a micro one."""
    return sorted({key.rsplit("|", 1)[0] for key in keys if "|" in key})


def _corpus_reducer(keys: list[str], metric: str) -> Callable[[np.ndarray], np.ndarray]:
    """Component totals -> the corpus metric. A macro metric's totals end with one column per label:
    how many items carry that label's counts. Its mean runs over the labels some item of the sample
    (or resample) carries: every label on every item when the scorer counts them all (official HoC,
    declared label sets), only the labels its gold or answer uses in strict HoC, so that each
    resample is scored as the run is."""
    position = CORPUS_NAMES.index(metric)
    labels = _labels(keys)
    if not labels:  # micro: one tp/fp/fn triple

        def micro(totals: np.ndarray) -> np.ndarray:
            return prf_arrays(*(totals[..., keys.index(k)] for k in ("tp", "fp", "fn")))[position]

        return micro

    def macro(totals: np.ndarray) -> np.ndarray:  # per label, then the unweighted mean over labels
        per_label = np.stack(
            [
                prf_arrays(*(totals[..., keys.index(f"{label}|{k}")] for k in ("tp", "fp", "fn")))[position]
                for label in labels
            ],
            axis=-1,
        )
        carried = totals[..., len(keys) :] > 0
        count = carried.sum(axis=-1)
        return np.where(count > 0, (per_label * carried).sum(axis=-1) / np.maximum(count, 1), 0.0)

    return macro


def weigh(groups: Iterable[list[Stratum]]) -> list[Stratum]:
    """Strata of an average of averages: each group (a category's tasks) counts alike, and within a
    group each stratum alike, as the leaderboard averages them."""
    groups = [group for group in groups if group]
    return [replace(s, weight=1 / (len(groups) * len(group))) for group in groups for s in group]


# -- one run -------------------------------------------------------------------------------------


def kind(strata: list[Stratum]) -> str:
    if any(s.corpus for s in strata):
        return "corpus"
    if all(np.isin(s.rows, (0.0, 1.0)).all() for s in strata):
        return "proportion"
    return "mean"


def pooled(strata: list[Stratum]) -> float:
    return float(sum(s.weight * s.value() for s in strata) / sum(s.weight for s in strata))


def _normalised(strata: list[Stratum]) -> list[Stratum]:
    total = sum(s.weight for s in strata)
    return [replace(s, weight=s.weight / total) for s in strata]


def effective_n(strata: list[Stratum]) -> float:
    """Kish's effective sample size of the weighted items: n for a single task."""
    return 1 / sum(s.weight**2 / s.n for s in _normalised(strata))


def wilson(proportion: float, n: float) -> tuple[float, float]:
    """Wilson score interval; n may be an effective (non-integer) size."""
    denominator = 1 + _Z**2 / n
    centre = (proportion + _Z**2 / (2 * n)) / denominator
    half = _Z * math.sqrt(proportion * (1 - proportion) / n + _Z**2 / (4 * n * n)) / denominator
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def interval(strata: list[Stratum]) -> Estimate:
    """The pooled value of one run with its 95% interval (see the module table)."""
    strata = _normalised(strata)
    value, n, how = pooled(strata), sum(s.n for s in strata), kind(strata)
    if how == "proportion":
        low, high = wilson(value, effective_n(strata))
        return Estimate(value, low, high, n)
    if how == "mean":
        variance = sum(s.weight**2 * _padded_variance(s.rows[:, 0], (0.0, 1.0)) / s.n for s in strata)
        half = _t_quantile(0.5 + CONFIDENCE / 2, max(n - len(strata), 1)) * math.sqrt(variance)
        return Estimate(value, max(0.0, float(value - half)), min(1.0, float(value + half)), n)
    parts = [(s.n, s.weight, partial(_resampled, s)) for s in strata]
    low, high, _ = _bootstrap(parts, sum(s.n for s in strata))
    if high - low <= 1e-12:  # every resample equal (e.g. F1 0 everywhere): no evidence of precision
        low, high = wilson(value, effective_n(strata))
    return Estimate(value, min(low, value), max(high, value), n)


def _t_quantile(q: float, df: int) -> float:
    """Student's t quantile: what ``scipy.stats.t.ppf`` computes (its ``_ppf`` is this very
    ``stdtrit``), from scipy.special, which imports in 0.3 s where scipy.stats takes 0.75 s."""
    from scipy.special import stdtrit

    return stdtrit(df, q)


def _padded_variance(values: np.ndarray, pseudo: tuple[float, ...]) -> float:
    """Sample variance of the values with each pseudo-value added at weight 1/2, so identical scores
    on a few items do not give a zero-width interval (for 0/1 pseudo-values this is the variance
    floor of the Agresti-Coull family)."""
    weights = np.concatenate([np.ones(len(values)), np.full(len(pseudo), 0.5)])
    data = np.concatenate([values, pseudo])
    mean = np.average(data, weights=weights)
    return float(np.sum(weights * (data - mean) ** 2) / (weights.sum() - 1 + 1e-300))


def _multiplicities(indices: np.ndarray, n: int) -> np.ndarray:
    """How often each of n items is drawn in each resample (..., n): the resampled totals are then
    one matrix product, not a copy of every drawn row."""
    flat = indices.reshape(-1, indices.shape[-1])
    offsets = flat + n * np.arange(len(flat))[:, None]
    counts = np.bincount(offsets.ravel(), minlength=len(flat) * n).reshape(len(flat), n)
    return counts.reshape((*indices.shape[:-1], n)).astype(float)


def _resampled_value(stratum: Stratum, counts: np.ndarray) -> np.ndarray:
    totals = counts @ stratum.rows
    return stratum.reduce(totals if stratum.corpus else totals / stratum.n)


def _resampled_change(old: Stratum, new: Stratum, indices: np.ndarray) -> np.ndarray:
    counts = _multiplicities(indices, old.n)
    return _resampled_value(new, counts) - _resampled_value(old, counts)


def _resampled(stratum: Stratum, indices: np.ndarray) -> np.ndarray:
    return _resampled_value(stratum, _multiplicities(indices, stratum.n))


def _bootstrap(parts: list[tuple[int, float, Callable[[np.ndarray], np.ndarray]]], cells: int):
    """Stratified percentile bootstrap: each part is (items, weight, item indices -> metric); items
    are resampled within each part and the weighted metrics summed; ``cells`` is the number of
    items one resample counts. Returns (low, high, std error)."""

    # a one-item part resamples to itself (and scipy needs two items a sample): a constant
    constant = sum(weight * float(metric(np.zeros(1, dtype=int))) for n, weight, metric in parts if n < 2)
    parts = [part for part in parts if part[0] >= 2]
    if not parts:
        return constant, constant, 0.0

    def statistic(*indices: np.ndarray, axis: int = -1) -> np.ndarray:
        return constant + sum(
            weight * metric(np.asarray(idx, dtype=int))
            for (_, weight, metric), idx in zip(parts, indices, strict=True)
        )

    from scipy import stats  # here, not at import: a run with no corpus metric never needs it

    result = stats.bootstrap(
        tuple(np.arange(n, dtype=float) for n, _, _ in parts),
        statistic,
        paired=False,  # each part resampled on its own: stratified by task
        vectorized=True,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        batch=max(1, BATCH_CELLS // cells),  # resamples held in memory at once
        random_state=SEED,
    )
    low, high = result.confidence_interval
    return float(low), float(high), float(result.standard_error)


# -- two runs, paired by item --------------------------------------------------------------------


def change(pairs: list[tuple[Stratum, Stratum]], alpha: float) -> Change:
    """The paired comparison of two runs on the same items (see the module table)."""
    total = sum(old.weight for old, _ in pairs)
    pairs = [(replace(o, weight=o.weight / total), replace(n, weight=n.weight / total)) for o, n in pairs]
    olds, news = [o for o, _ in pairs], [n for _, n in pairs]
    old, new, how = pooled(olds), pooled(news), kind(olds + news)
    n = sum(o.n for o in olds)
    p_value, test = _sign_flip(pairs, how)
    if how == "corpus":
        parts = [(o.n, o.weight, partial(_resampled_change, o, nw)) for o, nw in pairs]
        low, high, se = _bootstrap(parts, sum(o.n for o, _ in pairs))
        noise = se**2
    else:
        low, high = _agresti_min(pairs)
        noise = sum(o.weight**2 * _two_way_noise(nw.rows[:, 0] - o.rows[:, 0]) / o.n for o, nw in pairs)
    return Change(
        old,
        new,
        new - old,
        float(min(low, new - old)),
        float(max(high, new - old)),
        p_value,
        detectable_drop(pairs, noise, alpha),
        n,
        test,
    )


def _two_way_noise(differences: np.ndarray) -> float:
    """Per-item variance of the changes that cancel out: twice the smaller of the squared gains and
    the squared losses, a share (for 0/1 items, McNemar's balanced discordance). The one-way rest is
    the drop itself, which must not count as noise against detecting it."""
    gains = float(np.square(differences[differences > 0]).sum())
    losses = float(np.square(differences[differences < 0]).sum())
    return 2 * min(gains, losses) / len(differences)


def _grid_step(scores: np.ndarray, most_epochs: int = 10) -> float:
    """1/E for scores that are all multiples of 1/E (E <= most_epochs; E = 1 for 0/1 scores), else 1:
    continuous scores have no grid, and their pad spans the whole range."""
    for epochs in range(1, most_epochs + 1):
        scaled = scores * epochs
        if np.allclose(scaled, np.round(scaled), rtol=0, atol=1e-9):
            return 1.0 / epochs
    return 1.0


def _agresti_min(pairs: list[tuple[Stratum, Stratum]]) -> tuple[float, float]:
    """Agresti & Min (2005) for paired proportions, stratified: each task's differences get the
    pseudo-differences +1 and -1 (weight 1/2 each) and 0 (weight 1), i.e. 1/2 added to each cell of
    its 2x2 table. Continuous scores are padded the same way (+-1, the whole range). Scores on a
    grid, the means of E epochs of 0/1 items, are padded at their largest difference, never under
    the grid's step 1/E: a pad of +-1 beside differences of 1/3 widened six equal losses to an
    interval over 0 that the sign-flip test (p = 2/2**6) rejects."""
    centre, variance = 0.0, 0.0
    for old, new in pairs:
        differences = new.rows[:, 0] - old.rows[:, 0]
        step = _grid_step(np.concatenate([old.rows[:, 0], new.rows[:, 0]]))
        pad = max(float(np.abs(differences).max(initial=0.0)), step) if step < 1 else 1.0
        size = old.n + 2
        mean = differences.sum() / size
        centre += old.weight * mean
        variance += old.weight**2 * ((np.square(differences).sum() + pad**2) / size - mean**2) / size
    half = _Z * math.sqrt(variance)
    return max(-1.0, centre - half), min(1.0, centre + half)


def _sign_flip(pairs: list[tuple[Stratum, Stratum]], how: str) -> tuple[float, str]:
    """Two-sided p-value of the paired sign-flip test of the weighted change, and the test's name."""
    if how == "proportion" and len(pairs) == 1:  # the sign-flip test on 0/1 pairs is McNemar's
        from scipy import stats

        differences = pairs[0][1].rows[:, 0] - pairs[0][0].rows[:, 0]
        worse, better = int((differences < 0).sum()), int((differences > 0).sum())
        return (stats.binomtest(worse, worse + better).pvalue if worse + better else 1.0), "mcnemar exact"
    changed = [(o, n, (o.rows != n.rows).any(axis=1)) for o, n in pairs]
    steps = [n.rows[mask] - o.rows[mask] for o, n, mask in changed]
    bounds = np.cumsum([0] + [len(step) for step in steps])
    m = int(bounds[-1])
    if m < 2:  # one changed item: its two sign patterns mirror each other
        return 1.0, "sign-flip exact"
    base = [(o.totals(o.rows), n.totals(n.rows), 1.0 if o.corpus else 1 / o.n) for o, n, _ in changed]

    def statistic(swapped: np.ndarray) -> np.ndarray:
        """The weighted change for each row of swap indicators (1: the item's answers exchanged)."""
        result = np.zeros(len(swapped))
        for (old, new, _), (old_totals, new_totals, scale), step, start, stop in zip(
            changed, base, steps, bounds[:-1], bounds[1:], strict=True
        ):
            shift = swapped[:, start:stop] @ step * scale
            result = result + old.weight * (new.reduce(new_totals - shift) - old.reduce(old_totals + shift))
        return result

    # Not scipy.stats.permutation_test: with its paired resampling (an argsort per resample) the
    # comparison in `python bench/statistics.py` (15,000 items) took 68.9 s, with this loop 6.4 s.
    observed = statistic(np.zeros((1, m)))[0]
    tolerance = 1e-12 * max(1.0, abs(observed))
    exact = 2**m <= RESAMPLES
    if exact:  # every sign pattern once, the observed one included
        patterns = (np.arange(2**m)[:, None] >> np.arange(m)) & 1
        null = statistic(patterns.astype(float))
        at_least = int((null >= observed - tolerance).sum())
        at_most = int((null <= observed + tolerance).sum())
        p = 2 * min(at_least, at_most) / 2**m
    else:  # seeded Monte Carlo; the observed pattern counts once, as in scipy
        rng = np.random.default_rng(SEED)
        rows, at_least, at_most = max(1, BATCH_CELLS // m), 0, 0
        for start in range(0, RESAMPLES, rows):
            null = statistic(rng.integers(0, 2, (min(rows, RESAMPLES - start), m)).astype(float))
            at_least += int((null >= observed - tolerance).sum())
            at_most += int((null <= observed + tolerance).sum())
        p = 2 * (min(at_least, at_most) + 1) / (RESAMPLES + 1)
        if min(at_least, at_most) == 0 and how != "corpus":
            # No resample as extreme: the floor 2/(RESAMPLES+1) would hide how small p is, and BH
            # over many metrics may need smaller. A linear change is a sum of independent +-a_i,
            # so Hoeffding's bound 2 exp(-t^2 / (2 sum a_i^2)) is a valid, conservative p.
            spread = sum(
                float(np.square(step[:, 0]).sum()) * (o.weight / o.n) ** 2
                for (o, _, _), step in zip(changed, steps, strict=True)
            )
            p = min(p, 2 * math.exp(-(observed**2) / (2 * spread)))
    return float(min(1.0, p)), "sign-flip" + (" exact" if exact else "")


def detectable_drop(pairs: list[tuple[Stratum, Stratum]], noise: float, alpha: float) -> float | None:
    """Smallest drop (0-1 scale) the test finds at ``alpha`` with 80% power on these items.

    The sign-flip test needs at least k changed items, k the smallest with 2^(1-k) < alpha (6 at
    0.05): None when there are fewer items. Otherwise delta solves
    delta = (z_{1-alpha/2} + z_power) * se(delta), se^2 = noise + delta (1 - delta) / n_eff: the
    changes that cancel out plus the most a drop of delta adds on a 0-1 metric (one-way flips of
    whole items), a quadratic in delta. For 0/1 items a drop is whole items flipping, so it is at
    least the weight of the k heaviest items.
    """
    needed = math.floor(1 + math.log2(1 / alpha)) + 1  # smallest k with 2^(1-k) < alpha
    olds = [old for old, _ in pairs]
    if sum(old.n for old in olds) < needed:
        return None
    from scipy import stats

    c2 = (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(POWER)) ** 2
    k = 1 / effective_n(olds)
    a = 1 + c2 * k
    drop = (c2 * k + math.sqrt((c2 * k) ** 2 + 4 * a * c2 * noise)) / (2 * a)
    if kind(olds + [new for _, new in pairs]) == "proportion":
        item_weights = sorted((w for old in olds for w in [old.weight / old.n] * old.n), reverse=True)
        drop = max(drop, sum(item_weights[:needed]))
    return float(min(drop, 1.0))
