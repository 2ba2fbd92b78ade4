"""ECS, IC, bootstrap and per-cell consistency against brute-force references."""

from __future__ import annotations

import numpy as np
import pytest

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


def brute_ecs_per_cell(a, b):
    """ecs_i = |A(i) ∩ B(i)| / max(|A(i)|, |B(i)|), straight from the definition."""
    a, b = list(a), list(b)
    n = len(a)
    members_a = {lab: {j for j in range(n) if a[j] == lab} for lab in set(a)}
    members_b = {lab: {j for j in range(n) if b[j] == lab} for lab in set(b)}
    out = np.empty(n)
    for i in range(n):
        ca, cb = members_a[a[i]], members_b[b[i]]
        out[i] = len(ca & cb) / max(len(ca), len(cb))
    return out


def brute_ic(labelings):
    """IC from raw labelings: unique partitions via frozensets, S by brute force."""
    parts = {}
    for row in labelings:
        key = frozenset(frozenset(np.flatnonzero(row == lab).tolist()) for lab in np.unique(row))
        parts.setdefault(key, [row, 0])[1] += 1
    rows = [v[0] for v in parts.values()]
    p = np.array([v[1] for v in parts.values()], dtype=float)
    p /= p.sum()
    s = np.array([[brute_ecs_per_cell(x, y).mean() for y in rows] for x in rows])
    return 1.0 / (p @ s @ p)


def random_labels(rng, n, k):
    return rng.integers(0, k, n)


@pytest.mark.parametrize("n,ka,kb", [(1, 1, 1), (7, 1, 7), (50, 3, 5), (200, 20, 2), (300, 300, 4)])
def test_ecs_per_cell_matches_brute_force(n, ka, kb):
    rng = np.random.default_rng(n + ka + kb)
    for _ in range(3):
        a, b = random_labels(rng, n, ka), random_labels(rng, n, kb)
        np.testing.assert_allclose(ecs_per_cell(a, b), brute_ecs_per_cell(a, b), rtol=0, atol=1e-12)
        assert abs(ecs(a, b) - brute_ecs_per_cell(a, b).mean()) < 1e-12


def test_ecs_handles_arbitrary_label_values():
    rng = np.random.default_rng(1)
    a = rng.choice([-5, 17, 1000], 80)
    b = rng.choice([3, 9], 80)
    assert abs(ecs(a, b) - brute_ecs_per_cell(a, b).mean()) < 1e-12


def test_ecs_equals_clusim_element_similarity():
    """The closed form equals clusim's personalised-PageRank ECS (alpha 0.9)."""
    clusim_sim = pytest.importorskip("clusim.sim")
    from clusim.clustering import Clustering

    rng = np.random.default_rng(3)
    for _ in range(5):
        a, b = random_labels(rng, 40, 4), random_labels(rng, 40, 6)
        ca = Clustering().from_membership_list(a.tolist())
        cb = Clustering().from_membership_list(b.tolist())
        expected = clusim_sim.element_sim(ca, cb, alpha=0.9)
        assert abs(ecs(a, b) - expected) < 1e-9


def test_ecs_is_one_only_for_the_same_partition():
    rng = np.random.default_rng(0)
    a = random_labels(rng, 100, 5)
    relabelled = np.array([7, 3, 11, 0, 2])[a]
    assert ecs(a, relabelled) == 1.0
    assert np.all(ecs_per_cell(a, relabelled) == 1.0)
    b = a.copy()
    b[0] = (b[0] + 1) % 5
    assert ecs(a, b) < 1.0


def test_canonicalize_makes_relabellings_identical():
    a = np.array([5, 5, 2, 9, 2, 5])
    assert canonicalize(a).tolist() == [0, 0, 1, 2, 1, 0]
    assert np.array_equal(canonicalize(a), canonicalize(np.array([1, 1, 0, 3, 0, 1])))


def test_unique_partitions_collapses_relabelled_trials():
    a = np.array([0, 0, 1, 1, 2])
    b = np.array([0, 1, 1, 1, 2])
    trials = np.stack([a, b, 2 - a, a + 10, b])
    partitions, counts, inverse = unique_partitions(trials)
    assert partitions.shape == (2, 5)
    assert counts.tolist() == [3, 2]
    assert inverse.tolist() == [0, 1, 0, 0, 1]


def test_ecs_matrix_matches_pairwise_ecs():
    rng = np.random.default_rng(5)
    parts = np.stack([canonicalize(random_labels(rng, 60, k)) for k in (2, 3, 4, 5)])
    s = ecs_matrix(parts)
    assert np.allclose(np.diag(s), 1.0) and np.allclose(s, s.T)
    for i in range(4):
        for j in range(4):
            if i != j:
                assert abs(s[i, j] - brute_ecs_per_cell(parts[i], parts[j]).mean()) < 1e-12


def test_ic_is_one_when_trials_agree_and_above_one_otherwise():
    rng = np.random.default_rng(7)
    a = random_labels(rng, 80, 4)
    same = np.stack([a, (a + 1) % 4, a, np.array([3, 0, 2, 1])[a]])
    parts, counts, _ = unique_partitions(same)
    assert inconsistency(counts / counts.sum(), ecs_matrix(parts)) == 1.0
    mixed = np.stack([a, a, random_labels(rng, 80, 4), a])
    parts, counts, _ = unique_partitions(mixed)
    ic = inconsistency(counts / counts.sum(), ecs_matrix(parts))
    assert ic > 1.0
    assert abs(ic - brute_ic(mixed)) < 1e-12


def test_bootstrap_reuses_s_and_matches_direct_resampling():
    rng = np.random.default_rng(11)
    base = [random_labels(rng, 50, 3) for _ in range(3)]
    trials = np.stack([base[i] for i in (0, 0, 1, 2, 0, 1)])
    parts, counts, inverse = unique_partitions(trials)
    sim = ecs_matrix(parts)
    ics = bootstrap_inconsistency(inverse, sim, 40, np.random.default_rng(123))
    again = bootstrap_inconsistency(inverse, sim, 40, np.random.default_rng(123))
    assert np.array_equal(ics, again)
    assert ics.shape == (40,) and np.all(ics >= 1.0)
    # Replay the same draws and compute each IC from the resampled labelings directly.
    draws = np.random.default_rng(123).integers(0, trials.shape[0], size=(40, trials.shape[0]))
    for d, value in zip(draws, ics, strict=False):
        assert abs(value - brute_ic(trials[d])) < 1e-12


def test_cell_consistency_brute_force_and_agreement():
    rng = np.random.default_rng(2)
    parts = np.stack([canonicalize(random_labels(rng, 30, k)) for k in (2, 3, 3)])
    p = np.array([0.5, 0.3, 0.2])
    expected = np.zeros(30)
    weight = 0.0
    for i in range(3):
        for j in range(3):
            if i != j:
                expected += p[i] * p[j] * brute_ecs_per_cell(parts[i], parts[j])
                weight += p[i] * p[j]
    np.testing.assert_allclose(cell_consistency(parts, p), expected / weight, atol=1e-12)
    assert np.array_equal(cell_consistency(parts[:1], np.array([1.0])), np.ones(30))
