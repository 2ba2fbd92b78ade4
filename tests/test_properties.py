"""Property-based tests of the similarity, IC and merge core (hypothesis).

Every fast, contingency-table function is checked against a brute-force reference
written here straight from the definitions in the design brief (section 2):

    ecs_i(A, B) = |A(i) ∩ B(i)| / max(|A(i)|, |B(i)|)       (explicit sets)
    s(A, B)     = mean_i ecs_i
    IC          = 1 / (p^T S p)   over the unique partitions of a trial set

Example counts are bounded so that the whole module runs in well under 30 s.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scice._graph import graph_from_input
from scice._merge import effective_counts, merge_small_clusters, relabel_by_size
from scice._similarity import (
    bootstrap_inconsistency,
    canonicalize,
    cell_consistency,
    ecs,
    ecs_matrix,
    ecs_per_cell,
    inconsistency,
    unique_partitions,
)

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MEDIUM = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------
# Brute-force references, written from the formulas with explicit loops and sets
# ---------------------------------------------------------------------------
def _members(labels) -> dict:
    groups: dict = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, set()).add(i)
    return groups


def brute_ecs_per_cell(a, b) -> np.ndarray:
    a, b = list(np.asarray(a).tolist()), list(np.asarray(b).tolist())
    assert len(a) == len(b)
    ma, mb = _members(a), _members(b)
    out = []
    for i in range(len(a)):
        A, B = ma[a[i]], mb[b[i]]
        out.append(len(A & B) / max(len(A), len(B)))
    return np.array(out, dtype=np.float64)


def brute_ecs(a, b) -> float:
    return float(np.mean(brute_ecs_per_cell(a, b)))


def as_partition(labels) -> frozenset:
    """A labeling as a set of blocks: equal exactly for the same partition."""
    return frozenset(frozenset(block) for block in _members(np.asarray(labels).tolist()).values())


def brute_ic(trials: np.ndarray) -> float:
    """IC from raw trial labelings without any of the package's helpers."""
    parts = [as_partition(row) for row in trials]
    distinct: list = []
    for p in parts:
        if p not in distinct:
            distinct.append(p)
    reps = [trials[parts.index(p)] for p in distinct]
    freq = np.array([parts.count(p) for p in distinct], dtype=np.float64) / len(parts)
    q = 0.0
    for i in range(len(reps)):
        for j in range(len(reps)):
            s = 1.0 if i == j else brute_ecs(reps[i], reps[j])
            q += freq[i] * freq[j] * s
    return 1.0 / q


def ic_from_trials(trials: np.ndarray) -> float:
    """IC end to end with the package: unique_partitions + ecs_matrix + inconsistency."""
    partitions, counts, _ = unique_partitions(trials)
    return inconsistency(counts / counts.sum(), ecs_matrix(partitions))


# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------
def relabel(labels: np.ndarray, rng: np.random.Generator, style: str = "any") -> np.ndarray:
    """Same partition, new label ids: a random injective map of the labels.

    Styles: ``perm`` permutes 0..k-1 among themselves; ``any`` maps to arbitrary
    distinct ints (negative, sparse, beyond n, huge).
    """
    labels = np.asarray(labels, dtype=np.int64)
    uniq, inverse = np.unique(labels, return_inverse=True)
    if style == "perm":
        new = rng.permutation(uniq.size)
    else:
        pool = rng.choice(10 * uniq.size + 10, size=uniq.size, replace=False).astype(np.int64)
        shift = int(rng.choice([0, -5, -(10**6), 10**9, 3]))
        new = pool + shift
    return new[inverse.ravel()]


@st.composite
def labelings(draw, n=None, min_n: int = 1, max_n: int = 500):
    """A labeling of ``n`` cells: random, all singletons, one cluster, few or skewed clusters."""
    if n is None:
        n = draw(st.integers(min_n, max_n))
    kind = draw(st.sampled_from(["drawn", "random", "singletons", "one", "few", "giant"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "drawn" and n <= 40:
        k = draw(st.integers(1, n))
        lab = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)), dtype=np.int64)
    elif kind == "singletons":
        lab = rng.permutation(n)
    elif kind == "one":
        lab = np.zeros(n, dtype=np.int64)
    elif kind == "few":
        lab = rng.integers(0, draw(st.integers(1, 4)), size=n)
    elif kind == "giant":  # one giant cluster plus singletons
        lab = np.where(rng.random(n) < 0.9, 0, np.arange(1, n + 1))
    else:
        lab = rng.integers(0, draw(st.integers(1, n)), size=n)
    if draw(st.booleans()):
        lab = relabel(lab, rng)
    return np.asarray(lab, dtype=np.int64)


@st.composite
def labeling_pairs(draw, max_n: int = 500):
    """Two labelings of the same cells: independent, perturbed, split or relabelled."""
    a = draw(labelings(max_n=max_n))
    n = a.size
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    how = draw(st.sampled_from(["independent", "perturbed", "split", "same"]))
    if how == "independent":
        b = draw(labelings(n=n))
    elif how == "perturbed":  # a few cells move to other (or new) clusters
        b = a.copy()
        idx = rng.choice(n, size=max(1, n // 20), replace=False)
        b[idx] = rng.choice(np.append(np.unique(a), a.max() + 1), size=idx.size)
    elif how == "split":  # a refinement of a
        b = a * 2 + rng.integers(0, 2, size=n)
    else:
        b = relabel(a, rng)
    return a, np.asarray(b, dtype=np.int64)


@st.composite
def trial_sets(draw, max_n: int = 60, max_trials: int = 12, max_pool: int = 4):
    """``(T, n)`` trial labelings drawn from a small pool of partitions, each trial relabelled."""
    n = draw(st.integers(2, max_n))
    pool_size = draw(st.integers(1, max_pool))
    pool = [draw(labelings(n=n)) for _ in range(pool_size)]
    t = draw(st.integers(1, max_trials))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    picks = draw(st.lists(st.integers(0, pool_size - 1), min_size=t, max_size=t))
    return np.stack([relabel(pool[i], rng) for i in picks])


@st.composite
def graphs_and_labels(draw, max_n: int = 40, mixed: bool = False):
    """A validated random graph (isolated cells allowed), a labeling with gaps, and min_cluster_size.

    Weights are dyadic (0.25 .. 2) so edge-weight sums are exact and ties are common.
    """
    n = draw(st.integers(3, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    density = draw(st.sampled_from([0.02, 0.08, 0.3]))
    n_pairs = n * (n - 1) // 2
    m = max(1, int(rng.binomial(n_pairs, density)))
    iu, ju = np.triu_indices(n, k=1)
    pick = rng.choice(n_pairs, size=m, replace=False)
    w = rng.choice([0.25, 0.5, 1.0, 2.0], size=m)
    upper = sp.coo_matrix((w, (iu[pick], ju[pick])), shape=(n, n))
    graph = graph_from_input((upper + upper.T).tocsr())
    n_labels = draw(st.integers(1, n))
    weights = 1.0 / np.arange(1, n_labels + 1) ** draw(st.sampled_from([0.0, 1.0, 2.0]))  # skewed sizes
    labels = rng.choice(n_labels, size=n, p=weights / weights.sum())
    if draw(st.booleans()):
        labels = labels * 3  # gaps in the label ids
    sizes = np.bincount(labels)
    sizes = sizes[sizes > 0]
    if mixed:  # some clusters kept and some small, whenever the sizes differ
        m = draw(st.integers(int(sizes.min()) + 1, max(int(sizes.max()), int(sizes.min()) + 1)))
    else:
        m = draw(st.integers(1, 6))
    return graph, labels.astype(np.int64), m


# ---------------------------------------------------------------------------
# ECS
# ---------------------------------------------------------------------------
class TestECS:
    @MANY
    @given(labeling_pairs())
    def test_matches_brute_force(self, pair):
        a, b = pair
        ref = brute_ecs_per_cell(a, b)
        np.testing.assert_allclose(ecs_per_cell(a, b), ref, rtol=0, atol=1e-12)
        assert abs(ecs(a, b) - ref.mean()) <= 1e-12

    @pytest.mark.parametrize("n", [1, 2, 3, 7, 499, 500])
    def test_extreme_labelings_match_brute_force(self, n):
        singletons, one = np.arange(n), np.zeros(n, dtype=np.int64)
        for a, b in [(singletons, one), (one, singletons), (singletons, singletons[::-1]), (one, one)]:
            np.testing.assert_allclose(ecs_per_cell(a, b), brute_ecs_per_cell(a, b), rtol=0, atol=1e-12)
            assert abs(ecs(a, b) - brute_ecs(a, b)) <= 1e-12
        # Closed forms: every cell of "all singletons vs one cluster" scores 1/n.
        np.testing.assert_allclose(ecs_per_cell(singletons, one), np.full(n, 1.0 / n), rtol=0, atol=1e-15)

    @MANY
    @given(labeling_pairs())
    def test_symmetric_and_bounded(self, pair):
        a, b = pair
        ab, ba = ecs_per_cell(a, b), ecs_per_cell(b, a)
        np.testing.assert_array_equal(ab, ba)
        assert abs(ecs(a, b) - ecs(b, a)) <= 1e-12
        assert ab.shape == (a.size,)
        # Every cell shares at least itself, so ecs_i >= 1/n > 0.
        assert np.all(ab >= 1.0 / a.size - 1e-15) and np.all(ab <= 1.0)
        assert 0.0 < ecs(a, b) <= 1.0

    @MEDIUM
    @given(labelings(), st.integers(0, 2**32 - 1), st.sampled_from(["perm", "any"]))
    def test_identical_up_to_relabelling_is_exactly_one(self, a, seed, style):
        b = relabel(a, np.random.default_rng(seed), style)
        np.testing.assert_array_equal(ecs_per_cell(a, b), np.ones(a.size))
        assert ecs(a, b) == 1.0
        assert ecs(a, a) == 1.0

    @MEDIUM
    @given(labeling_pairs())
    def test_one_only_for_the_same_partition(self, pair):
        a, b = pair
        same = as_partition(a) == as_partition(b)
        assert (ecs(a, b) == 1.0) == same
        assert bool(np.all(ecs_per_cell(a, b) == 1.0)) == same

    @MEDIUM
    @given(labeling_pairs(), st.integers(0, 2**32 - 1), st.sampled_from(["perm", "any"]))
    def test_invariant_to_relabelling_either_argument(self, pair, seed, style):
        a, b = pair
        rng = np.random.default_rng(seed)
        a2, b2 = relabel(a, rng, style), relabel(b, rng, style)
        base, base_cells = ecs(a, b), ecs_per_cell(a, b)
        for x, y in [(a2, b), (a, b2), (a2, b2)]:
            np.testing.assert_array_equal(ecs_per_cell(x, y), base_cells)
            assert abs(ecs(x, y) - base) <= 1e-12

    def test_length_mismatch_raises(self):
        with pytest.raises(ValueError, match="same length"):
            ecs(np.array([0, 1, 2]), np.array([0, 1]))
        # A length-1 labeling must not broadcast against a longer one.
        with pytest.raises(ValueError, match="same length"):
            ecs_per_cell(np.array([0, 1, 2]), np.array([0]))

    def test_matches_clusim_element_centric_similarity(self):
        """Independent reference: clusim's personalised-PageRank ECS (alpha = 0.9)."""
        pytest.importorskip("clusim")
        import clusim.sim as csim
        from clusim.clustering import Clustering

        rng = np.random.default_rng(7)
        for n in (1, 2, 5, 40, 120):
            a, b = rng.integers(0, 4, n), rng.integers(0, 7, n)
            c1 = Clustering().from_membership_list(a.tolist())
            c2 = Clustering().from_membership_list(b.tolist())
            scores, index = csim.element_sim_elscore(c1, c2, alpha=0.9)
            ref = np.array([scores[index[i]] for i in range(n)])
            np.testing.assert_allclose(ecs_per_cell(a, b), ref, rtol=0, atol=1e-12)
            assert abs(ecs(a, b) - csim.element_sim(c1, c2, alpha=0.9)) <= 1e-12


class TestECSMatrix:
    @FAST
    @given(trial_sets(max_n=80))
    def test_matches_pairwise_ecs(self, trials):
        partitions, _, _ = unique_partitions(trials)
        sim = ecs_matrix(partitions)
        u = partitions.shape[0]
        assert sim.shape == (u, u)
        np.testing.assert_array_equal(np.diag(sim), np.ones(u))
        np.testing.assert_array_equal(sim, sim.T)
        for i in range(u):
            for j in range(u):
                if i != j:
                    assert abs(sim[i, j] - brute_ecs(partitions[i], partitions[j])) <= 1e-12
                    assert sim[i, j] < 1.0  # distinct partitions are never fully similar


# ---------------------------------------------------------------------------
# Unique partitions and the inconsistency coefficient
# ---------------------------------------------------------------------------
class TestUniquePartitions:
    @MEDIUM
    @given(trial_sets())
    def test_collapses_exactly_the_same_partitions(self, trials):
        partitions, counts, inverse = unique_partitions(trials)
        parts = [as_partition(row) for row in trials]
        t = len(parts)
        assert inverse.shape == (t,) and counts.sum() == t
        np.testing.assert_array_equal(counts, np.bincount(inverse, minlength=partitions.shape[0]))
        for s in range(t):
            assert as_partition(partitions[inverse[s]]) == parts[s]
            for r in range(t):
                assert (inverse[s] == inverse[r]) == (parts[s] == parts[r])
        # Canonical rows: labels 0, 1, 2, ... in order of first appearance.
        for row in partitions:
            np.testing.assert_array_equal(row, canonicalize(row))
            assert row[0] == 0
            assert np.all(np.diff(np.maximum.accumulate(row.astype(np.int64))) <= 1)
        # First-appearance order of partitions among the trials.
        assert np.all(np.diff([int(np.flatnonzero(inverse == u)[0]) for u in range(len(counts))]) > 0)


class TestInconsistency:
    @MEDIUM
    @given(trial_sets())
    def test_matches_brute_force_from_raw_trials(self, trials):
        assert abs(ic_from_trials(trials) - brute_ic(trials)) <= 1e-12

    @MEDIUM
    @given(trial_sets())
    def test_at_least_one_and_one_iff_all_trials_agree(self, trials):
        ic = ic_from_trials(trials)
        agree = len({as_partition(row) for row in trials}) == 1
        assert ic >= 1.0 - 1e-12
        if agree:
            assert ic == 1.0
        else:
            assert ic > 1.0
        # p^T S p >= min(S) > 0, and ecs >= 1/n, so IC <= n.
        assert ic <= trials.shape[1] + 1e-9

    @MEDIUM
    @given(trial_sets(), st.integers(0, 2**32 - 1))
    def test_invariant_to_trial_order_and_relabelling(self, trials, seed):
        rng = np.random.default_rng(seed)
        shuffled = trials[rng.permutation(trials.shape[0])]
        relabelled = np.stack([relabel(row, rng, "any") for row in shuffled])
        base = ic_from_trials(trials)
        assert abs(ic_from_trials(shuffled) - base) <= 1e-12
        assert abs(ic_from_trials(relabelled) - base) <= 1e-12

    @FAST
    @given(labelings(max_n=200), st.integers(1, 20), st.integers(0, 2**32 - 1))
    def test_identical_trials_give_exactly_one(self, labels, t, seed):
        rng = np.random.default_rng(seed)
        trials = np.stack([relabel(labels, rng, "any") for _ in range(t)])
        partitions, counts, _ = unique_partitions(trials)
        assert partitions.shape[0] == 1 and counts.tolist() == [t]
        assert ic_from_trials(trials) == 1.0

    def test_two_singleton_vs_one_cluster_closed_form(self):
        # Half the trials all-singletons, half one cluster, n cells:
        # S = [[1, 1/n], [1/n, 1]], p = (1/2, 1/2) -> IC = 2 / (1 + 1/n).
        n = 10
        trials = np.stack([np.arange(n), np.zeros(n, dtype=np.int64)] * 3)
        assert abs(ic_from_trials(trials) - 2.0 / (1.0 + 1.0 / n)) <= 1e-12


class TestBootstrap:
    @FAST
    @given(trial_sets(), st.integers(1, 40), st.integers(0, 2**32 - 1))
    def test_deterministic_and_at_least_one(self, trials, n_bootstrap, seed):
        partitions, counts, inverse = unique_partitions(trials)
        sim = ecs_matrix(partitions)
        v1 = bootstrap_inconsistency(inverse, sim, n_bootstrap, np.random.default_rng(seed))
        v2 = bootstrap_inconsistency(inverse, sim, n_bootstrap, np.random.default_rng(seed))
        assert v1.shape == (n_bootstrap,)
        np.testing.assert_array_equal(v1, v2)
        assert np.all(v1 >= 1.0 - 1e-12)
        assert np.all(np.isfinite(v1))
        assert np.all(v1 <= 1.0 / sim.min() + 1e-9)  # p^T S p >= min(S)
        if partitions.shape[0] == 1:
            np.testing.assert_array_equal(v1, np.ones(n_bootstrap))

    def test_seed_matters_and_draws_are_unbiased(self):
        # Half the trials give partition A, half B: a fair resample has frequency ~1/2 for each,
        # so the mean bootstrap IC is close to the IC at p = (1/2, 1/2) and well below the maximum.
        n, t = 20, 10
        a, b = np.zeros(n, dtype=np.int64), np.arange(n)
        trials = np.stack([a, b] * (t // 2))
        partitions, _, inverse = unique_partitions(trials)
        sim = ecs_matrix(partitions)
        v1 = bootstrap_inconsistency(inverse, sim, 2000, np.random.default_rng(1))
        v2 = bootstrap_inconsistency(inverse, sim, 2000, np.random.default_rng(2))
        assert not np.array_equal(v1, v2)
        # Resampled p_A ~ Binomial(t, 1/2) / t and IC(p) = 1 / (1 - 2 p (1 - p) (1 - s)):
        # exact mean and standard deviation of a draw, then a 5-sigma check of the sample mean.
        from math import comb

        s = sim[0, 1]
        pa = np.arange(t + 1) / t
        pmf = np.array([comb(t, j) for j in range(t + 1)]) / 2.0**t
        ic = 1.0 / (1.0 - 2.0 * pa * (1.0 - pa) * (1.0 - s))
        mean = float(pmf @ ic)
        sd = float(np.sqrt(pmf @ (ic - mean) ** 2))
        for v in (v1, v2):
            assert abs(v.mean() - mean) < 5 * sd / np.sqrt(v.size)
            assert set(np.round(v, 12)) <= set(np.round(ic, 12))

    @FAST
    @given(trial_sets(max_n=30, max_trials=8, max_pool=3), st.integers(0, 2**32 - 1))
    def test_every_draw_is_the_ic_of_a_resample(self, trials, seed):
        """Each bootstrap value is the IC of some multiset of T trials (checked by enumeration)."""
        partitions, counts, inverse = unique_partitions(trials)
        t, u = inverse.size, partitions.shape[0]
        sim = ecs_matrix(partitions)
        values = bootstrap_inconsistency(inverse, sim, 25, np.random.default_rng(seed))
        present = np.unique(inverse)  # only partitions that occur can be drawn
        achievable = set()

        def walk(prefix, left, idx):
            if idx == present.size - 1:
                freq = np.zeros(u)
                freq[present[:-1]] = prefix
                freq[present[-1]] = left
                achievable.add(round(inconsistency(freq / t, sim), 9))
                return
            for c in range(left + 1):
                walk(prefix + [c], left - c, idx + 1)

        walk([], t, 0)
        for v in values:
            assert round(float(v), 9) in achievable


class TestCellConsistency:
    @FAST
    @given(trial_sets())
    def test_bounded_and_matches_definition(self, trials):
        partitions, counts, _ = unique_partitions(trials)
        p = counts / counts.sum()
        mei = cell_consistency(partitions, p)
        n = trials.shape[1]
        assert mei.shape == (n,)
        assert np.all(mei >= 0.0) and np.all(mei <= 1.0 + 1e-12)
        u = partitions.shape[0]
        if u == 1:
            np.testing.assert_array_equal(mei, np.ones(n))
            return
        total, weight = np.zeros(n), 0.0
        for i in range(u):
            for j in range(i + 1, u):
                total += p[i] * p[j] * brute_ecs_per_cell(partitions[i], partitions[j])
                weight += p[i] * p[j]
        np.testing.assert_allclose(mei, total / weight, rtol=0, atol=1e-12)
        # A cell whose cluster (as a set of cells) is the same in every partition scores 1.
        blocks = [_members(row.tolist()) for row in partitions]
        for c in range(n):
            if len({frozenset(b[row[c]]) for b, row in zip(blocks, partitions.tolist(), strict=False)}) == 1:
                assert mei[c] == pytest.approx(1.0, abs=1e-12)

    @FAST
    @given(labelings(max_n=200), st.integers(1, 10), st.integers(0, 2**32 - 1))
    def test_all_ones_when_all_trials_agree(self, labels, t, seed):
        rng = np.random.default_rng(seed)
        trials = np.stack([relabel(labels, rng, "any") for _ in range(t)])
        partitions, counts, _ = unique_partitions(trials)
        np.testing.assert_array_equal(cell_consistency(partitions, counts / counts.sum()), np.ones(labels.size))


# ---------------------------------------------------------------------------
# Effective counts and the small-cluster merge
# ---------------------------------------------------------------------------
def _brute_effective(labels, m: int) -> int:
    return sum(1 for size in Counter(np.asarray(labels).tolist()).values() if size >= m)


def _cluster_weights(graph, labels) -> dict:
    """Total edge weight between each pair of distinct clusters (explicit loop over edges)."""
    w: dict = {}
    for s, t, x in zip(graph.sources.tolist(), graph.targets.tolist(), graph.weights.tolist(), strict=False):
        a, b = int(labels[s]), int(labels[t])
        if a != b:
            w[(a, b)] = w.get((a, b), 0.0) + x
            w[(b, a)] = w.get((b, a), 0.0) + x
    return w


class TestMerge:
    @MEDIUM
    @given(st.lists(st.lists(st.integers(0, 9), min_size=1, max_size=30), min_size=1, max_size=5), st.integers(1, 6))
    def test_effective_counts_match_brute_force(self, rows, m):
        n = min(len(r) for r in rows)
        labelings_ = np.array([r[:n] for r in rows], dtype=np.int64)
        expected = [_brute_effective(row, m) for row in labelings_]
        np.testing.assert_array_equal(effective_counts(labelings_, m), expected)
        # A single labeling (1-D) is one row.
        np.testing.assert_array_equal(effective_counts(labelings_[0], m), expected[:1])

    @MEDIUM
    @given(labelings(max_n=200))
    def test_relabel_by_size(self, labels):
        labels = labels - labels.min()  # relabel_by_size takes any ints; keep them small
        out = relabel_by_size(labels)
        assert as_partition(out) == as_partition(labels)
        sizes = np.bincount(out)
        assert np.all(sizes > 0) and np.all(np.diff(sizes) <= 0)
        # Ties in size: order of first appearance.
        first = {lab: int(np.flatnonzero(out == lab)[0]) for lab in range(sizes.size)}
        for lab in range(sizes.size - 1):
            if sizes[lab] == sizes[lab + 1]:
                assert first[lab] < first[lab + 1]

    @MANY
    @given(graphs_and_labels())
    def test_merge_invariants(self, case):
        graph, labels, m = case
        merged = merge_small_clusters(labels, graph, m)
        again = merge_small_clusters(labels.copy(), graph, m)
        np.testing.assert_array_equal(merged, again)  # deterministic
        n = labels.size
        assert merged.shape == (n,)
        k = int(merged.max()) + 1
        sizes = np.bincount(merged.astype(np.int64))
        assert sizes.size == k and np.all(sizes > 0)  # labels 0..k-1, all used
        assert np.all(np.diff(sizes) <= 0)  # by decreasing size
        n_effective = _brute_effective(labels, m)
        assert int(effective_counts(labels, m)[0]) == n_effective
        if n_effective == 0:  # everything small: one cluster
            np.testing.assert_array_equal(merged, np.zeros(n))
            return
        assert k == n_effective
        assert int(effective_counts(merged, m)[0]) == k
        assert sizes.min() >= m
        # The merge only coarsens: a cluster never splits, kept clusters never join each other.
        size_of = Counter(labels.tolist())
        kept = sorted(c for c, s in size_of.items() if s >= m)
        for c in size_of:
            assert np.unique(merged[labels == c]).size == 1
        assert len({int(merged[labels == c][0]) for c in kept}) == len(kept)
        if m == 1:
            assert as_partition(merged) == as_partition(labels)

    @MANY
    @given(graphs_and_labels(mixed=True))
    def test_merge_targets(self, case):
        """Small clusters touching a kept cluster join the one with most shared weight (ties: lowest id);
        small clusters with no path to a kept cluster join the largest kept cluster (ties: lowest id)."""
        graph, labels, m = case
        size_of = Counter(labels.tolist())
        kept = sorted(c for c, s in size_of.items() if s >= m)
        small = sorted(c for c, s in size_of.items() if s < m)
        assume(kept and small)
        merged = merge_small_clusters(labels, graph, m)
        final = {c: int(merged[labels == c][0]) for c in size_of}
        w = _cluster_weights(graph, labels)
        # Clusters connected to each other through cluster-level edges (union-find).
        parent = {c: c for c in size_of}

        def find(c):
            while parent[c] != c:
                parent[c] = parent[parent[c]]
                c = parent[c]
            return c

        for a, b in w:
            parent[find(a)] = find(b)
        kept_roots = {find(c) for c in kept}
        largest = min(kept, key=lambda c: (-size_of[c], c))
        for s in small:
            direct = {c: w[(s, c)] for c in kept if (s, c) in w}
            if direct:
                best = max(direct.values())
                target = min(c for c, x in direct.items() if x == best)
                assert final[s] == final[target], (s, direct)
            elif find(s) not in kept_roots:
                assert final[s] == final[largest]
            else:  # reached through other small clusters: ends up in some kept cluster of its component
                assert final[s] in {final[c] for c in kept if find(c) == find(s)}

    def test_isolated_small_cluster_joins_largest(self):
        # Two triangles (sizes 3 and 4) plus an isolated cell; ties between kept sizes go to the lowest id.
        A = sp.lil_matrix((8, 8))
        for i, j in [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (5, 6), (3, 6)]:
            A[i, j] = A[j, i] = 1.0
        graph = graph_from_input(A.tocsr())
        labels = np.array([0, 0, 0, 1, 1, 1, 1, 2])
        merged = merge_small_clusters(labels, graph, 2)
        assert merged[7] == merged[3]  # the larger cluster (id 1, 4 cells)
        labels = np.array([0, 0, 0, 1, 1, 1, 2, 3])  # kept clusters of equal size 3: lowest id wins
        A[6, 3] = A[3, 6] = 0.0
        merged = merge_small_clusters(labels, graph_from_input(A.tocsr()), 2)
        assert merged[7] == merged[0]


# ---------------------------------------------------------------------------
# Legacy dictionary: from_legacy_dict(to_legacy_dict(r)) == r for generated results
# ---------------------------------------------------------------------------
_TEXT = st.text(max_size=12)
_PRINTABLE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=12)
# HDF5 cannot name a group or dataset "", "." or anything with "/": file keys are identifiers.
_KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_ .\-\u00e9]{0,10}", fullmatch=True)
_FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)


def _scalars(text):
    return st.one_of(st.none(), st.booleans(), st.integers(-(2**62), 2**62), _FLOATS, text)


def _mappings(text, keys):
    leaf = st.one_of(
        _scalars(text),
        st.lists(st.integers(-1000, 1000), max_size=4),
        st.lists(st.floats(allow_nan=False, width=64), max_size=4),
    )
    return st.dictionaries(keys, st.one_of(leaf, st.dictionaries(keys, leaf, max_size=3)), max_size=4)


@st.composite
def _frames(draw, n_rows, text):
    if draw(st.booleans()) and n_rows == 0:
        return pd.DataFrame()
    columns = {}
    for name in draw(
        st.lists(
            st.sampled_from(["target", "gamma", "ic", "status", "bracketed", "reason", "mixed"]),
            unique=True,
            max_size=5,
        )
    ):
        if name == "target":
            columns[name] = np.array(
                draw(st.lists(st.integers(-1, 50), min_size=n_rows, max_size=n_rows)), dtype=np.int64
            )
        elif name in ("gamma", "ic"):
            columns[name] = np.array(draw(st.lists(_FLOATS, min_size=n_rows, max_size=n_rows)), dtype=np.float64)
        elif name == "bracketed":
            columns[name] = np.array(draw(st.lists(st.booleans(), min_size=n_rows, max_size=n_rows)), dtype=bool)
        elif name in ("status", "reason"):
            columns[name] = draw(st.lists(text, min_size=n_rows, max_size=n_rows))
        else:  # an object column mixing ints, floats, strings and None (JSON-encoded)
            values = draw(
                st.lists(
                    st.one_of(
                        st.none(), st.integers(-100, 100), text, st.floats(allow_nan=False, allow_infinity=False)
                    ),
                    min_size=n_rows,
                    max_size=n_rows,
                )
            )
            col = np.empty(n_rows, dtype=object)
            col[:] = values
            columns[name] = col
    return pd.DataFrame(columns, index=pd.RangeIndex(n_rows))


@st.composite
def scice_results(draw, text=_TEXT, keys=_TEXT):
    from scice import ClusterResult, SCICEResults

    n_cells = draw(st.integers(1, 25))
    int_dtype = st.sampled_from([np.int8, np.int16, np.int32, np.int64])
    clusters = []
    for n_cluster in draw(st.lists(st.integers(1, 40), unique=True, max_size=4)):
        n_unique = draw(st.integers(1, 4))
        labelings_ = np.stack([draw(labelings(n=n_cells)) % 100 for _ in range(n_unique)])
        clusters.append(
            ClusterResult(
                n_cluster=n_cluster,
                gamma=draw(st.floats(1e-9, 10.0)),
                ic=draw(st.one_of(st.floats(1.0, 3.0), st.just(float("inf")))),
                ic_vec=np.array(draw(st.lists(st.one_of(st.floats(1.0, 3.0), st.just(float("inf"))), max_size=12))),
                best_labels=(draw(labelings(n=n_cells)) % 100).astype(draw(int_dtype)),
                labelings=labelings_.astype(draw(int_dtype)),
                frequencies=np.array(
                    draw(st.lists(st.integers(1, 30), min_size=n_unique, max_size=n_unique)), dtype=np.int64
                ),
                mei=np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n_cells, max_size=n_cells))),
                n_iter=draw(st.integers(0, 1000)),
                source_target_cluster=draw(st.integers(-1, 40)),
                trial_ic=draw(st.floats(1.0, 5.0)),
            )
        )
    mode = draw(st.sampled_from(["cluster_range", "resolution"]))
    targets = np.array(sorted(draw(st.sets(st.integers(2, 60), min_size=1, max_size=6))), dtype=np.int64)
    uncovered = {int(k): draw(text) for k in draw(st.sets(st.integers(2, 60), max_size=4))}
    return SCICEResults(
        clusters=tuple(clusters),
        analysis_mode=mode,
        ic_threshold=draw(st.one_of(st.just(float("inf")), st.floats(1.0, 2.0))),
        requested_cluster_range=targets if mode == "cluster_range" else None,
        resolution_input=(
            np.array(draw(st.lists(st.floats(1e-6, 1.0), min_size=1, max_size=4))) if mode == "resolution" else None
        ),
        uncovered_targets=uncovered,
        search_coverage_complete=draw(st.booleans()),
        target_diagnostics=draw(_frames(draw(st.integers(0, 5)), text)),
        resolution_search_diagnostics=draw(_frames(draw(st.integers(0, 5)), text)),
        optimization_diagnostics=draw(_frames(draw(st.integers(0, 5)), text)),
        resolution_diagnostics=draw(_frames(draw(st.integers(0, 5)), text)),
        parallel_layout=draw(_mappings(text, keys)),
        params=draw(_mappings(text, keys)),
        cell_names=(np.array([f"cell{i}" for i in range(n_cells)], dtype=object) if draw(st.booleans()) else None),
        timings=draw(st.dictionaries(keys, st.floats(0.0, 100.0), max_size=4)),
    )


class TestLegacyRoundTrip:
    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(scice_results())
    def test_dict_round_trip(self, results):
        from scice.legacy import from_legacy_dict, to_legacy_dict

        encoded = to_legacy_dict(results)
        decoded = from_legacy_dict(encoded)
        assert decoded == results
        # == compares arrays by dtype kind; the exact dtypes and dict key order survive too.
        for a, b in zip(results.clusters, decoded.clusters, strict=False):
            for name in ("ic_vec", "best_labels", "labelings", "frequencies", "mei"):
                assert getattr(a, name).dtype == getattr(b, name).dtype, name
        for name in ("params", "parallel_layout", "timings"):
            assert list(getattr(decoded, name)) == list(getattr(results, name))
        assert list(decoded.uncovered_targets) == list(results.uncovered_targets)
        # Idempotent: encoding the decoded results again decodes to the same results.
        assert from_legacy_dict(to_legacy_dict(decoded)) == results

    @settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(scice_results(text=_PRINTABLE, keys=_KEYS))
    def test_h5ad_round_trip(self, results):
        anndata = pytest.importorskip("anndata")
        from scice.legacy import from_legacy_dict, to_legacy_dict

        n = results.clusters[0].best_labels.shape[0] if results.clusters else 3
        adata = anndata.AnnData(X=np.zeros((n, 1), dtype=np.float32))
        adata.uns["scICE"] = to_legacy_dict(results)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "r.h5ad")
            adata.write_h5ad(path)
            back = anndata.read_h5ad(path)
        assert from_legacy_dict(back.uns["scICE"]) == results
