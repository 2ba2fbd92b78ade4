"""align_labels / label_flows: cluster ids that persist along k, on hand-made and real labelings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from scice._align import align_labels, align_layers, label_flows


def _best_labels(fit) -> dict[int, np.ndarray]:
    return {c.n_cluster: c.best_labels for c in fit.results_.clusters}


def test_largest_child_keeps_the_parent_id():
    # k=2: cluster A (cells 0-5), cluster B (cells 6-9). k=3: A splits 4 + 2, B stays.
    k2 = np.array([7, 7, 7, 7, 7, 7, 3, 3, 3, 3])
    k3 = np.array([5, 5, 9, 9, 9, 9, 0, 0, 0, 0])
    aligned = align_labels({2: k2, 3: k3})
    np.testing.assert_array_equal(aligned[2], [0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(aligned[3], [2, 2, 0, 0, 0, 0, 1, 1, 1, 1])


def test_a_pure_split_keeps_one_id_and_adds_one():
    rng = np.random.default_rng(0)
    labels = np.zeros(300, dtype=int)
    by_k = {1: labels.copy()}
    for k in range(2, 9):  # split a random cluster in two, k-1 times
        target = rng.choice(np.unique(labels))
        members = np.flatnonzero(labels == target)
        moved = rng.choice(members, size=max(1, members.size // 3), replace=False)
        labels = labels.copy()
        labels[moved] = 100 + k
        by_k[k] = labels
    aligned = align_labels(by_k)
    for k_prev, k in zip(list(aligned)[:-1], list(aligned)[1:], strict=True):
        before, after = set(np.unique(aligned[k_prev])), set(np.unique(aligned[k]))
        assert before <= after and len(after - before) == 1
        assert np.array_equal(np.unique(aligned[k]), np.arange(k))  # nested splits: ids 0..k-1
        unchanged = aligned[k] == aligned[k_prev]
        new_cells = np.isin(aligned[k], list(after - before))
        assert np.array_equal(unchanged, ~new_cells)  # only the split-off cells change id


def test_a_merge_drops_the_id_without_heir_and_ids_are_never_reused():
    k3 = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2])
    k4 = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])  # clusters 1 and 2 merge: 2 has no heir
    k5 = np.array([0, 0, 3, 3, 1, 1, 1, 4, 4])  # and split again
    aligned = align_labels({3: k3, 4: k4, 5: k5})
    assert set(np.unique(aligned[4])) == {0, 1}
    np.testing.assert_array_equal(aligned[5], [0, 0, 3, 3, 1, 1, 1, 4, 4])  # 2 is not reused


def test_most_cells_keep_their_ids_on_pbmc(pbmc_fit):
    raw = _best_labels(pbmc_fit)
    aligned = align_labels(raw)
    ks = list(aligned)
    assert ks == sorted(raw) and len(ks) >= 4
    for k_prev, k in zip(ks[:-1], ks[1:], strict=True):
        kept = float(np.mean(aligned[k] == aligned[k_prev]))
        raw_kept = float(np.mean(raw[k] == raw[k_prev]))
        assert kept > 0.5, f"{k_prev}->{k}: only {kept:.2f} of the cells keep their id"
        assert kept >= raw_kept
        # Aligned labels are the same partition as the input.
        assert pd.crosstab(aligned[k], raw[k]).gt(0).sum(axis=1).eq(1).all()
        assert len(np.unique(aligned[k])) == len(np.unique(raw[k]))


def test_renaming_the_input_clusters_or_reordering_the_mapping_changes_nothing(pbmc_fit):
    raw = _best_labels(pbmc_fit)
    expected = align_labels(raw)
    rng = np.random.default_rng(1)
    renamed = {}
    for k in reversed(list(raw)):  # other insertion order
        values = np.unique(raw[k])
        new_names = rng.permutation(values.size) * 7 + 3
        renamed[k] = new_names[np.searchsorted(values, raw[k])]
    result = align_labels(renamed)
    assert list(result) == list(expected)
    for k in expected:
        np.testing.assert_array_equal(result[k], expected[k])


def test_permuting_the_cells_permutes_the_result(pbmc_fit):
    raw = _best_labels(pbmc_fit)
    expected = align_labels(raw)
    order = np.random.default_rng(2).permutation(next(iter(raw.values())).size)
    result = align_labels({k: v[order] for k, v in raw.items()})
    for k in expected:  # pbmc's cluster sizes are distinct, so no tie depends on cell order
        np.testing.assert_array_equal(result[k], expected[k][order])


def test_ties_do_not_depend_on_label_values():
    # Two equal halves: the one holding cell 0 is id 0, whatever its label.
    for a, b in ((0, 1), (1, 0), (9, 4)):
        aligned = align_labels({2: np.array([a, a, b, b])})
        np.testing.assert_array_equal(aligned[2], [0, 0, 1, 1])
    # A parent split in two equal children: the child holding the lower cell index is the heir.
    aligned = align_labels({2: np.array([0, 0, 0, 0, 1, 1]), 3: np.array([5, 5, 2, 2, 8, 8])})
    np.testing.assert_array_equal(aligned[3], [0, 0, 2, 2, 1, 1])


def test_label_flows_table(pbmc_fit):
    aligned = align_labels(_best_labels(pbmc_fit))
    flows = label_flows(aligned)
    assert list(flows.columns) == [
        "k_prev",
        "k",
        "parent",
        "child",
        "n_cells",
        "fraction_of_child",
        "fraction_of_parent",
    ]
    n_cells = next(iter(aligned.values())).size
    ks = list(aligned)
    assert sorted(set(zip(flows.k_prev, flows.k, strict=True))) == list(zip(ks[:-1], ks[1:], strict=True))
    for (k_prev, k), part in flows.groupby(["k_prev", "k"]):
        assert part.n_cells.sum() == n_cells
        table = pd.crosstab(aligned[k_prev], aligned[k])
        for row in part.itertuples():
            assert table.loc[row.parent, row.child] == row.n_cells
        np.testing.assert_allclose(part.groupby("child").fraction_of_child.sum(), 1.0)
        np.testing.assert_allclose(part.groupby("parent").fraction_of_parent.sum(), 1.0)
    assert flows.n_cells.gt(0).all()


def test_label_flows_of_one_count_is_empty():
    flows = label_flows({3: np.array([0, 1, 2])})
    assert flows.empty and "fraction_of_child" in flows.columns
    assert align_labels({}) == {}


def test_bad_input():
    with pytest.raises(ValueError, match="same cells"):
        align_labels({2: np.array([0, 1]), 3: np.array([0, 1, 2])})
    with pytest.raises(ValueError, match="1-D"):
        align_labels({2: np.zeros((2, 2), dtype=int)})
    with pytest.raises(TypeError, match="integers"):
        align_labels({2: np.array([0.5, 1.0])})
    with pytest.raises(TypeError, match="counts must be integers"):
        align_labels({"2": np.array([0, 1])})


def test_align_layers_keeps_the_consistent_ids_and_gives_the_others_fresh_ones():
    rng = np.random.default_rng(3)
    cells = 300
    base = rng.integers(0, 6, size=cells)
    labels = {
        2: base % 2,
        3: base % 3,
        4: np.where(base < 4, base, rng.integers(0, 4, size=cells)),  # noisy: the inconsistent count
        6: base,
    }
    consistent = {2: True, 3: True, 4: False, 6: True}
    layers = align_layers(labels, consistent)
    strong = align_labels({k: v for k, v in labels.items() if consistent[k]})
    assert list(layers) == [2, 3, 4, 6]
    for k, ids in strong.items():
        np.testing.assert_array_equal(layers[k], ids)  # the ids of the label columns
    # the inconsistent count is the same partition, renumbered from the count below it
    assert adjusted_rand_score(layers[4], labels[4]) == 1.0
    inherited = set(np.unique(layers[4])) & set(np.unique(layers[3]))
    assert inherited, "the count below hands its ids down"
    used = set().union(*(np.unique(v).tolist() for v in strong.values()))
    fresh = set(np.unique(layers[4]).tolist()) - set(np.unique(layers[3]).tolist())
    assert fresh and min(fresh) > max(used)  # never an id of another lineage
    # below the first consistent count: aligned to the first consistent count above
    first = align_layers({2: labels[2], 3: labels[3]}, {2: False, 3: True})
    np.testing.assert_array_equal(first[3], align_labels({3: labels[3]})[3])
    assert set(np.unique(first[2])) <= set(np.unique(first[3])) | {max(np.unique(first[3])) + 1}
    # without a consistent count it is align_labels of every count
    none = align_layers(labels, dict.fromkeys(labels, False))
    for k, ids in align_labels(labels).items():
        np.testing.assert_array_equal(none[k], ids)
