"""The thread-pool runner of the kernels' parallel loops (``riskmodel.kernels._chunks``)."""

from __future__ import annotations

import threading
import time

import numba
import numpy as np
import pytest

from riskmodel.kernels import kernel_threads
from riskmodel.kernels._chunks import compiled_bodies, parallel_chunks


@numba.njit(nogil=True)
def _count(lo, hi, hits):  # pragma: no cover - compiled
    for i in range(lo, hi):
        hits[i] += 1


@numba.njit(nogil=True)
def _fail_at(lo, hi, bad, out):  # pragma: no cover - compiled
    for i in range(lo, hi):
        if i == bad:
            raise ValueError("bad item")
        out[i] = 1.0


@pytest.mark.parametrize("n", [0, 1, 2, 3, 17, 64, 65, 1000, 10_007])
@pytest.mark.parametrize("threads", [1, 2])
def test_every_item_runs_exactly_once(n, threads):
    hits = np.zeros(n, dtype=np.int64)
    with kernel_threads(threads):
        parallel_chunks(_count, n, hits)
    np.testing.assert_array_equal(hits, np.ones(n, dtype=np.int64))


def test_chunks_run_on_two_threads_and_honour_the_thread_limit():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here")
    seen: set[int] = set()
    lock = threading.Lock()

    def body(lo, hi):  # chunk 0 waits until a chunk has run on another thread
        with lock:
            seen.add(threading.get_ident())
        deadline = time.monotonic() + 10
        while lo == 0 and len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.001)

    with kernel_threads(2):
        parallel_chunks(body, 64)
    assert len(seen) == 2
    seen.clear()
    with kernel_threads(1):
        parallel_chunks(lambda lo, hi: seen.add(threading.get_ident()), 64)
    assert seen == {threading.get_ident()}  # one thread: the caller's own, no pool


def test_an_exception_in_a_chunk_reaches_the_caller():
    out = np.zeros(500)
    with kernel_threads(2), pytest.raises(ValueError, match="bad item"):
        parallel_chunks(_fail_at, 500, 321, out)
    with kernel_threads(2):
        parallel_chunks(_count, 10, np.zeros(10, dtype=np.int64))  # the pool still works


def test_a_call_from_a_pool_thread_runs_serially():
    inner_threads: list[set[int]] = []

    def inner(lo, hi, found):
        found.add(threading.get_ident())

    def outer(lo, hi):
        found: set[int] = set()
        parallel_chunks(inner, 100, found)  # nested: on this thread only, no deadlock
        inner_threads.append(found)

    with kernel_threads(2):
        parallel_chunks(outer, 4)
    assert len(inner_threads) == 4 and all(len(found) == 1 for found in inner_threads)


def test_compiled_bodies_finds_the_dispatchers_a_driver_runs():
    from riskmodel.kernels import operator, specific

    assert compiled_bodies(_count) == [_count]
    bodies = compiled_bodies(specific.structural_kernel)
    assert [b.py_func.__name__ for b in bodies] == ["_structural_dates"]
    assert compiled_bodies(operator.grouped_rows_kernel) == [operator.grouped_rows_kernel]
    assert compiled_bodies(len) == []


def test_callers_on_several_threads_share_the_pool():
    from concurrent.futures import ThreadPoolExecutor

    def job(n):
        hits = np.zeros(n, dtype=np.int64)
        with kernel_threads(2):
            for _ in range(20):
                parallel_chunks(_count, n, hits)
        return hits

    sizes = [5, 64, 1000, 4097]
    with ThreadPoolExecutor(max_workers=len(sizes)) as callers:
        results = list(callers.map(job, sizes))
    for n, hits in zip(sizes, results):
        np.testing.assert_array_equal(hits, np.full(n, 20))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_pool():
    import multiprocessing

    with kernel_threads(2):
        parallel_chunks(_count, 100, np.zeros(100, dtype=np.int64))  # the parent's pool exists
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as children:  # the inherited pool has no threads in the child
        result = children.apply_async(_child_job, (1000,))
        hits = result.get(timeout=60)
    np.testing.assert_array_equal(hits, np.ones(1000, dtype=np.int64))


def _child_job(n):
    hits = np.zeros(n, dtype=np.int64)
    with kernel_threads(2):
        parallel_chunks(_count, n, hits)
    return hits
