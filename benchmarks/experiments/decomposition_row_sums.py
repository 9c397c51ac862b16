"""Experiment (issue 21, not kept): variants of the decomposition kernel's row sums.

The grouped kernel (:func:`riskmodel.kernels.operator.grouped_rows_kernel`) first sums, for
two portfolios at a time, each weight row against the dense exposure columns, the specific
variance ``Σ d w²`` and the group (industry) totals. This script times that pass (the
kernel's own ``_row_sums``) and its parts (a copy of its loops with each part switched on or
off), on one thread, and variants of it:

* ``dense, 4 columns per sweep``: four dense columns per pass over a block instead of two;
* ``dense 4-col + specific fused``: the specific variance summed in the first sweep;
* ``group sums by gather``: each group's total gathered from the stocks sorted by group
  instead of scattered stock by stock.

Same shape as ``bench_speed_audit.py``'s decomposition (1,000 × 5,000, 10 dense columns,
59 groups). Writes ``benchmarks/results/experiments/decomposition_row_sums.json``::

    python benchmarks/experiments/decomposition_row_sums.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numba
import numpy as np

from riskmodel.kernels.operator import MODE_DECOMPOSE, _row_sums

OUT = Path(__file__).resolve().parents[1] / "results" / "experiments" / "decomposition_row_sums.json"
FASTMATH = {"reassoc", "contract", "nsz"}
CHUNK = 1024


@numba.njit(fastmath=FASTMATH)
def kernel_row_sums(W, dense_t, codes, d, n_groups):  # pragma: no cover - compiled
    """The kernel's own row-sum pass over every pair of rows."""
    P = W.shape[0]
    total = 0.0
    for p0 in range(0, P - 1, 2):
        xd = np.zeros((dense_t.shape[0], 2))
        acc = np.zeros((n_groups, 2))
        spec0, spec1 = _row_sums(W[p0], W[p0 + 1], MODE_DECOMPOSE, dense_t, codes, d, xd, acc)
        total += xd.sum() + acc.sum() + spec0 + spec1
    return total


@numba.njit(fastmath=FASTMATH)
def row_sums(W, dense_t, codes, d, n_groups, dense, scatter, specific):  # pragma: no cover - compiled
    """A copy of the kernel's row-sum loops (two dense columns per sweep), its parts switched on or off."""
    P, N = W.shape
    kd = dense_t.shape[0]
    total = 0.0
    for p0 in range(0, P - 1, 2):
        w0 = W[p0]
        w1 = W[p0 + 1]
        xd = np.zeros((kd, 2))
        acc = np.zeros((n_groups, 2))
        spec0 = 0.0
        spec1 = 0.0
        for lo in range(0, N, CHUNK):
            hi = min(lo + CHUNK, N)
            n = hi - lo
            a0 = w0[lo:hi]
            a1 = w1[lo:hi]
            if dense:
                c = 0
                while c + 2 <= kd:
                    ba = dense_t[c, lo:hi]
                    bb = dense_t[c + 1, lo:hi]
                    s0a = 0.0
                    s0b = 0.0
                    s1a = 0.0
                    s1b = 0.0
                    for i in range(n):
                        s0a += a0[i] * ba[i]
                        s0b += a0[i] * bb[i]
                        s1a += a1[i] * ba[i]
                        s1b += a1[i] * bb[i]
                    xd[c, 0] += s0a
                    xd[c + 1, 0] += s0b
                    xd[c, 1] += s1a
                    xd[c + 1, 1] += s1b
                    c += 2
            if specific:
                dc = d[lo:hi]
                q0 = 0.0
                q1 = 0.0
                for i in range(n):
                    q0 += dc[i] * a0[i] * a0[i]
                    q1 += dc[i] * a1[i] * a1[i]
                spec0 += q0
                spec1 += q1
            if scatter:
                cc = codes[lo:hi]
                for i in range(n):
                    g = cc[i]
                    acc[g, 0] += a0[i]
                    acc[g, 1] += a1[i]
        total += xd.sum() + acc.sum() + spec0 + spec1
    return total


@numba.njit(fastmath=FASTMATH)
def dense_four(W, dense_t, d, specific):  # pragma: no cover - compiled
    """Dense sums four columns per sweep; ``specific``: ``Σ d w²`` fused into the first sweep."""
    P, N = W.shape
    kd = dense_t.shape[0]
    total = 0.0
    for p0 in range(0, P - 1, 2):
        w0 = W[p0]
        w1 = W[p0 + 1]
        xd = np.zeros((kd, 2))
        spec0 = 0.0
        spec1 = 0.0
        for lo in range(0, N, CHUNK):
            hi = min(lo + CHUNK, N)
            n = hi - lo
            a0 = w0[lo:hi]
            a1 = w1[lo:hi]
            c = 0
            if specific and kd >= 2:
                ba = dense_t[0, lo:hi]
                bb = dense_t[1, lo:hi]
                dc = d[lo:hi]
                s0a = 0.0
                s0b = 0.0
                s1a = 0.0
                s1b = 0.0
                q0 = 0.0
                q1 = 0.0
                for i in range(n):
                    x0 = a0[i]
                    x1 = a1[i]
                    s0a += x0 * ba[i]
                    s0b += x0 * bb[i]
                    s1a += x1 * ba[i]
                    s1b += x1 * bb[i]
                    q0 += dc[i] * x0 * x0
                    q1 += dc[i] * x1 * x1
                xd[0, 0] += s0a
                xd[1, 0] += s0b
                xd[0, 1] += s1a
                xd[1, 1] += s1b
                spec0 += q0
                spec1 += q1
                c = 2
            while c + 4 <= kd:
                ba = dense_t[c, lo:hi]
                bb = dense_t[c + 1, lo:hi]
                bc = dense_t[c + 2, lo:hi]
                bd = dense_t[c + 3, lo:hi]
                s0a = 0.0
                s0b = 0.0
                s0c = 0.0
                s0d = 0.0
                s1a = 0.0
                s1b = 0.0
                s1c = 0.0
                s1d = 0.0
                for i in range(n):
                    x0 = a0[i]
                    x1 = a1[i]
                    s0a += x0 * ba[i]
                    s0b += x0 * bb[i]
                    s0c += x0 * bc[i]
                    s0d += x0 * bd[i]
                    s1a += x1 * ba[i]
                    s1b += x1 * bb[i]
                    s1c += x1 * bc[i]
                    s1d += x1 * bd[i]
                xd[c, 0] += s0a
                xd[c + 1, 0] += s0b
                xd[c + 2, 0] += s0c
                xd[c + 3, 0] += s0d
                xd[c, 1] += s1a
                xd[c + 1, 1] += s1b
                xd[c + 2, 1] += s1c
                xd[c + 3, 1] += s1d
                c += 4
            while c < kd:
                ba = dense_t[c, lo:hi]
                s0a = 0.0
                s1a = 0.0
                for i in range(n):
                    s0a += a0[i] * ba[i]
                    s1a += a1[i] * ba[i]
                xd[c, 0] += s0a
                xd[c, 1] += s1a
                c += 1
        total += xd.sum() + spec0 + spec1
    return total


@numba.njit(fastmath=FASTMATH)
def group_sums_gather(W, perm, starts):  # pragma: no cover - compiled
    """Group totals gathered from the stocks sorted by group (``perm``, ``starts``)."""
    P = W.shape[0]
    n_groups = starts.shape[0] - 1
    total = 0.0
    for p0 in range(0, P - 1, 2):
        w0 = W[p0]
        w1 = W[p0 + 1]
        for g in range(n_groups):
            s0 = 0.0
            s1 = 0.0
            for j in range(starts[g], starts[g + 1]):
                i = perm[j]
                s0 += w0[i]
                s1 += w1[i]
            total += s0 + s1
    return total


def best_ms(fn, *args, repeat: int) -> float:
    fn(*args)
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--output", type=Path, default=OUT)
    args = ap.parse_args(argv)
    numba.set_num_threads(1)
    rng = np.random.default_rng(0)
    P, N, kd, G = 1000, 5000, 10, 59
    W = rng.normal(size=(P, N))
    dense_t = rng.normal(size=(kd, N))
    d = rng.uniform(size=N)
    codes = rng.integers(0, G, size=N)
    perm = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[perm], np.arange(G + 1))
    r = args.repeat
    rows = {
        "kernel's row sums (dense, specific, group scatter)": best_ms(kernel_row_sums, W, dense_t, codes, d, G, repeat=r),
        "the copy, every part on": best_ms(row_sums, W, dense_t, codes, d, G, True, True, True, repeat=r),
        "dense sums alone": best_ms(row_sums, W, dense_t, codes, d, G, True, False, False, repeat=r),
        "specific variance alone": best_ms(row_sums, W, dense_t, codes, d, G, False, False, True, repeat=r),
        "group scatter alone": best_ms(row_sums, W, dense_t, codes, d, G, False, True, False, repeat=r),
        "dense + specific, the kernel's way": best_ms(row_sums, W, dense_t, codes, d, G, True, False, True, repeat=r),
        "dense, 4 columns per sweep": best_ms(dense_four, W, dense_t, d, False, repeat=r),
        "dense 4-col + specific fused": best_ms(dense_four, W, dense_t, d, True, repeat=r),
        "group sums by gather": best_ms(group_sums_gather, W, perm, starts, repeat=r),
    }
    report = {
        "experiment": "decomposition_row_sums",
        "shape": {"n_portfolios": P, "n_stocks": N, "dense_columns": kd, "groups": G},
        "what": "best wall milliseconds on one thread",
        "ms": rows,
        "fused_over_kernel_way": rows["dense 4-col + specific fused"] / rows["dense + specific, the kernel's way"],
        "gather_over_scatter": rows["group sums by gather"] / rows["group scatter alone"],
        "decision": "not kept: the variants change the pass by a small part, and the gather is slower",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for name, ms in rows.items():
        print(f"{name:55s} {ms:7.2f} ms")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
