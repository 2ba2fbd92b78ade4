"""The worker side: light imports, the graph sent once, chunks equal to whole trial sets."""

from __future__ import annotations

import os
import pickle
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from scice import _worker
from scice._graph import graph_from_input
from scice._leiden import FitCancelled, LeidenConfig, TrialRequest, TrialRunner, WorkerError
from scice._worker import Chunk, GraphArrays
from scice.strategies import ProcessLayout, SerialLayout
from scice.strategies._parallel import LOCAL_WHILE_STARTING_MAX_EDGES, runs_in_parent


def test_worker_module_imports_no_heavy_dependencies():
    code = (
        "import sys, scice._worker; "
        "print(sorted(m for m in ('sklearn', 'pandas', 'anndata', 'scipy', 'scanpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_pool_workers_skip_igraphs_matplotlib_import():
    """igraph imports matplotlib.pyplot when it is installed (~0.5 s of a worker's start);
    scice's own pool workers load igraph without it, and matplotlib stays importable."""
    pytest.importorskip("matplotlib")
    code = (
        "import sys, scice._worker, igraph; had = 'matplotlib' in sys.modules; "
        "g = igraph.Graph.Ring(6); g.community_leiden(objective_function='CPM', resolution=0.1); "
        "import matplotlib; print(had, matplotlib.__name__)"
    )
    env = {**os.environ, **_worker.WORKER_ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split() == ["False", "matplotlib"]
    layout = ProcessLayout()
    with layout.session(2):
        seen = layout.map(
            eval,
            [
                (
                    "(__import__('scice._worker') and None, __import__('os').environ.get('SCICE_WORKER'), "
                    "'igraph' in __import__('sys').modules, 'matplotlib' in __import__('sys').modules)",
                )
            ]
            * 4,
            2,
        )
    assert set(seen) == {(None, "1", True, False)}


def test_run_trials_needs_the_graph_once(blobs):
    graph = graph_from_input(blobs)
    token = graph.token + "-test-run-trials"  # not held by this process yet
    args = ("CPM", 0.05, 0.01, 3, np.arange(4))
    assert _worker.run_trials(token, None, *args) is None
    arrays = GraphArrays(graph.n_vertices, graph.sources, graph.targets, graph.weights)
    labels, seconds = _worker.run_trials(token, arrays, *args)
    assert labels.shape == (4, graph.n_vertices) and seconds > 0
    again, _ = _worker.run_trials(token, None, *args)  # now held: no arrays needed
    assert np.array_equal(again, labels)
    assert token in _worker.held_graphs()


def test_chunked_runner_equals_local_runner(blobs):
    graph = graph_from_input(blobs)
    local = TrialRunner(graph, LeidenConfig())
    chunked = TrialRunner(graph, LeidenConfig(), layout=SerialLayout(), n_chunks=3)
    seeds = np.arange(100, 107)
    a = local.run(0.05, seeds, 3, 0.1)
    b = chunked.run(0.05, seeds, 3, 0.1)
    assert np.array_equal(a.labelings, b.labelings) and a.key == b.key
    # refinement from the same start, several requests dispatched together
    starts = [local.run(g, seeds, 2, 0.1) for g in (0.02, 0.08)]
    reqs = [TrialRequest(s.gamma, seeds + 1, 2, 0.1, start=s) for s in starts]
    for x, y in zip(local.run_many(reqs), chunked.run_many(reqs), strict=False):
        assert np.array_equal(x.labelings, y.labelings) and x.n_iterations == y.n_iterations == 4
    assert chunked.stats()["n_chunks"] == 3 + 6 and local.stats()["n_chunks"] == 0


@pytest.mark.parametrize("n_threads", [4])
def test_runner_is_thread_safe_and_caches(blobs, n_threads):
    graph = graph_from_input(blobs)
    runner = TrialRunner(graph, LeidenConfig(), layout=ProcessLayout(), n_chunks=2)
    gammas = [0.01, 0.03, 0.05, 0.07, 0.01, 0.03]
    seeds = np.arange(5)
    expected = [TrialRunner(graph, LeidenConfig()).run(g, seeds, 3, 0.1).labelings for g in gammas]
    with ThreadPoolExecutor(n_threads) as pool:
        got = list(pool.map(lambda g: runner.run(g, seeds, 3, 0.1).labelings, gammas))
    assert all(np.array_equal(x, y) for x, y in zip(got, expected, strict=False))
    stats = runner.stats()
    assert stats["n_leiden_calls"] + 5 * stats["n_cache_hits"] == 5 * len(gammas)


def test_stopped_runner_refuses_work(blobs):
    runner = TrialRunner(graph_from_input(blobs), LeidenConfig())
    runner.run(0.05, np.arange(2), 2, 0.1)
    runner.stop()
    with pytest.raises(FitCancelled):
        runner.run(0.06, np.arange(2), 2, 0.1)


class StartingLayout(SerialLayout):
    """A layout whose workers never finish starting; records what it was asked to run."""

    def __init__(self):
        self.calls = 0

    def ready(self):
        return False

    def map(self, func, tasks, n_jobs, callback=None):
        self.calls += 1
        return super().map(func, tasks, n_jobs, callback)


def test_small_graphs_start_in_the_parent_large_ones_wait_for_workers(blobs):
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    n = 20_000
    rows = rng.integers(0, n, size=LOCAL_WHILE_STARTING_MAX_EDGES + 5_000)
    cols = (rows + rng.integers(1, 50, size=rows.size)) % n  # a ring-like graph, no self loops
    upper = sp.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n)).tocsr()
    large = graph_from_input(upper + upper.T)
    assert large.n_edges > LOCAL_WHILE_STARTING_MAX_EDGES
    for graph, expect_map in ((graph_from_input(blobs), False), (large, True)):
        layout = StartingLayout()
        TrialRunner(graph, LeidenConfig(), layout=layout, n_chunks=2).run(0.05, np.arange(2), 1, 0.01)
        assert (layout.calls > 0) == expect_map


def test_a_chunk_is_the_run_trials_call_by_name(blobs):
    graph = graph_from_input(blobs)
    arrays = GraphArrays(graph.n_vertices, graph.sources, graph.targets, graph.weights)
    chunk = Chunk(graph.token + "-test-chunk", None, "CPM", 0.05, 0.01, 3, np.arange(3))
    assert chunk.initial is None and chunk.arrays is None
    assert _worker.run_trials(*chunk) is None  # this process lacks the graph under that token
    resend = chunk._replace(arrays=arrays)
    assert resend[2:7] == chunk[2:7] and resend.arrays.n_vertices == graph.n_vertices
    labels, _ = _worker.run_trials(*pickle.loads(pickle.dumps(resend)))  # crosses a process boundary as is
    again, _ = _worker.run_trials(*pickle.loads(pickle.dumps(chunk)))
    assert np.array_equal(labels, again) and labels.shape == (3, graph.n_vertices)


class RecordingLayout(SerialLayout):
    """Runs chunks here and records every chunk it was given."""

    def __init__(self):
        self.sent = []

    def map(self, func, tasks, n_jobs, callback=None):
        self.sent.append(list(tasks))
        return super().map(func, tasks, n_jobs, callback)


def test_runner_sends_named_chunks_and_resends_them_with_the_graph(blobs):
    graph = graph_from_input(blobs)
    _worker._GRAPHS.pop(graph.token, None)  # as on a fresh worker
    layout = RecordingLayout()
    start = TrialRunner(graph, LeidenConfig()).run(0.05, np.arange(4), 2, 0.1)
    _worker._GRAPHS.pop(graph.token, None)
    runner = TrialRunner(graph, LeidenConfig(), layout=layout, n_chunks=2)
    got = runner.run(0.05, np.arange(10, 14), 2, 0.1, start=start)
    first, resent = layout.sent
    assert all(isinstance(c, Chunk) and c.arrays is None and c.token == graph.token for c in first)
    assert [c.seeds.tolist() for c in first] == [[10, 11], [12, 13]]
    assert np.array_equal(np.concatenate([c.initial for c in first]), start.labelings)
    assert [c._replace(arrays=None)[2:6] for c in resent] == [c[2:6] for c in first]
    assert all(isinstance(c.arrays, GraphArrays) and c.arrays.n_vertices == graph.n_vertices for c in resent)
    assert runner.stats()["n_graph_sends"] == 2
    local = TrialRunner(graph, LeidenConfig()).run(0.05, np.arange(10, 14), 2, 0.1, start=start)
    assert np.array_equal(got.labelings, local.labelings)


class ForgetfulLayout(RecordingLayout):
    """Like a backend that starts fresh workers for every call: they never hold the graph."""

    def map(self, func, tasks, n_jobs, callback=None):
        _worker._GRAPHS.clear()
        return super().map(func, tasks, n_jobs, callback)


def test_workers_that_forget_the_graph_get_it_on_the_second_resend(blobs):
    """Past the once-per-worker allowance, a chunk still unanswered after the first resend gets the
    arrays on the second: three maps per trial set, never a round per chunk."""
    graph = graph_from_input(blobs)
    layout = ForgetfulLayout()
    runner = TrialRunner(graph, LeidenConfig(), layout=layout, n_chunks=2)
    got = [runner.run(g, np.arange(4), 2, 0.1) for g in (0.02, 0.05, 0.1)]
    assert [len(c) for c in layout.sent] == [2, 2] + [2, 2, 2] * 2
    stats = runner.stats()
    assert stats["n_graph_sends"] == 2 + 2 * 2 and stats["n_chunks_resent"] == 2 + 4 * 2
    local = TrialRunner(graph, LeidenConfig())
    for g, trial_set in zip((0.02, 0.05, 0.1), got, strict=True):
        assert np.array_equal(trial_set.labelings, local.run(g, np.arange(4), 2, 0.1).labelings)


class ArgumentDroppingLayout(SerialLayout):
    """A broken backend: it loses the arrays a chunk carries."""

    def map(self, func, tasks, n_jobs, callback=None):
        _worker._GRAPHS.clear()
        return super().map(func, [t._replace(arrays=None) for t in tasks], n_jobs, callback)


def test_a_backend_that_loses_the_graph_is_an_error(blobs):
    runner = TrialRunner(graph_from_input(blobs), LeidenConfig(), layout=ArgumentDroppingLayout(), n_chunks=2)
    with pytest.raises(WorkerError, match="did not receive the graph"):
        runner.run(0.05, np.arange(4), 2, 0.1)


def _random_graph():
    rng = np.random.default_rng(0)
    sources = rng.integers(0, 300, 1500)
    targets = (sources + rng.integers(1, 300, 1500)) % 300
    return _worker.build_igraph(300, sources, targets, np.ones(1500))


def test_seeded_igraph_rng_seeds_the_block_and_restores_pythons_generator():
    g = _random_graph()

    def leiden():
        kw = dict(objective_function="CPM", weights="weight", resolution=0.02, beta=0.01, n_iterations=1)
        return g.community_leiden(**kw).membership

    with _worker.seeded_igraph_rng(7):
        a = leiden()
    with pytest.raises(ZeroDivisionError), _worker.seeded_igraph_rng(8):
        leiden()
        raise ZeroDivisionError
    with _worker.seeded_igraph_rng(7):
        assert leiden() == a
    # Afterwards igraph draws from Python's `random` module again (also after the error).
    random.seed(3)
    first = leiden()
    random.seed(3)
    assert leiden() == first


@pytest.mark.parametrize(
    ("kwargs", "ready", "expected"),
    [
        (dict(n_workers=1, n_edges=10**6), True, True),  # one worker: nothing to spread
        (dict(n_workers=0, n_edges=10**6), True, True),  # resolve() chose the parent (pool_workers 0)
        (dict(n_workers=2), None, False),  # a layout's map: no graph rule
        (dict(n_workers=2, n_edges=999, min_edges=1_000), None, True),  # below ProcessLayout.inner_min_edges
        (dict(n_workers=2, n_edges=1_000, min_edges=1_000), None, False),
        (dict(n_workers=2, n_edges=LOCAL_WHILE_STARTING_MAX_EDGES), False, True),  # pool starting, small graph
        (dict(n_workers=2, n_edges=LOCAL_WHILE_STARTING_MAX_EDGES + 1), False, False),  # large graph waits
        (dict(n_workers=2, n_edges=10), True, False),  # pool up
    ],
)
def test_runs_in_parent_is_one_rule(kwargs, ready, expected):
    calls = []

    def layout_ready():
        calls.append(1)
        return ready

    assert runs_in_parent(**kwargs, ready=None if ready is None else layout_ready) is expected
    # ready() is asked only when the answer depends on it: a small graph on a real pool
    small = kwargs["n_workers"] > 1 and kwargs.get("n_edges", 0) <= LOCAL_WHILE_STARTING_MAX_EDGES
    assert len(calls) == (1 if ready is not None and small else 0)


def test_process_layout_decides_with_the_same_rule():
    layout = ProcessLayout(inner_min_edges=1_000)
    assert layout.resolve(2, 5, 100, 999).inner_workers == 1
    assert layout.resolve(2, 5, 100, 1_000).inner_workers == 2
    assert layout.resolve(1, 5, 100, 10**6).pool_workers == 0
    assert layout.map(os.getpid, [()] * 3, 1) == [os.getpid()] * 3  # one worker: here
    assert layout.map(os.getpid, [], 2) == []
    with layout.session(1):
        assert layout._session is not None and layout._session.executor is None and layout.ready()
    assert layout._session is None


def test_building_a_graph_raises_lokys_leak_allowance(monkeypatch):
    """loky restarts a worker that grew by more than ``_MAX_MEMORY_LEAK_SIZE`` (300 MB) after its
    first call (scice's warm-up); a 1M-cell graph is more than that, so every chunk ended with a
    restart and a resend. Building a graph must raise that allowance by the graph's size."""
    import joblib.externals.loky.process_executor as loop

    from scice.testing import blob_graph

    monkeypatch.setattr(loop, "_MAX_MEMORY_LEAK_SIZE", 0)
    graph = graph_from_input(blob_graph(n_blobs=3, size=400, seed=11), "connectivities")
    arrays = GraphArrays(graph.n_vertices, graph.sources, graph.targets, graph.weights)
    assert _worker._graph("leak-allowance-test", arrays) is not None
    assert loop._MAX_MEMORY_LEAK_SIZE >= max(int(3e8), _worker.GRAPH_ALLOWANCE_PER_EDGE * graph.n_edges)


def test_a_fit_sends_the_graph_once_per_worker():
    """Tasks that start together all find the workers without the graph; only as many of
    their resends as there are workers carry the edges (before: every resent chunk did)."""
    from scice import SCICE
    from scice.testing import blob_graph

    adjacency = blob_graph(n_blobs=4, size=1500, k=10, seed=2026)  # a graph no worker holds yet
    assert graph_from_input(adjacency).n_edges > LOCAL_WHILE_STARTING_MAX_EDGES
    fit = SCICE(resolution=[0.002, 0.005, 0.01, 0.02], n_trials=4, n_bootstrap=10, n_jobs=2, random_state=0)
    t = fit.fit(adjacency).results_.timings
    assert t["n_chunks_resent"] >= 2  # the tasks did start before the workers held the graph
    # two workers; one more when two sends reached the same worker
    assert t["n_graph_sends"] <= 3
