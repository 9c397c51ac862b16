"""The surrogate null's pooled products (issue 21): the column groups of a Lanczos step run
on a thread pool, one BLAS thread per GEMM, and their terms are summed in group order, so the
pooled null is the sequential null on one BLAS thread, bit for bit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from riskmodel._blas import blas_threads
from riskmodel.audit import spectrum as sp


def _world(T: int, N: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Z = rng.standard_t(5, size=(T, N))
    Z[:, :40] += 0.4 * rng.standard_normal((T, 1))  # a block
    return np.asfortranarray((Z - Z.mean(0)) / Z.std(0))


@pytest.mark.parametrize("kind", ["shuffle", "shift", "sign"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("inverse", [True, False])
def test_pooled_product_is_the_sequential_product(kind, dtype, inverse):
    T, N, S = 300, 700, 7
    Z = _world(T, N, 1)
    plan = sp.surrogate_plan(T, N, S, kind, np.random.default_rng(2), group_size=90)
    if not inverse and plan.inverse is not None:  # the scatter through perm
        plan = sp.SurrogatePlan(plan.edges, plan.kind, plan.perm, plan.sign, None)
    X = np.random.default_rng(3).standard_normal((T, S))
    with threadpool_limits(1), ThreadPoolExecutor(2) as pool:
        seq = sp._surrogate_gram_product(Z, plan, X, dtype)
        pooled = sp._surrogate_gram_product(Z, plan, X, dtype, pool)
    np.testing.assert_array_equal(pooled, seq)
    # and it is the product of each materialised surrogate
    for s in range(S):
        Zs = sp.apply_surrogate(Z, plan, s)
        np.testing.assert_allclose(pooled[:, s], Zs @ (Zs.T @ X[:, s]), rtol=1e-4 if dtype == np.float32 else 1e-11,
                                   atol=1e-3 if dtype == np.float32 else 1e-8)


@pytest.mark.parametrize("kind", ["shuffle", "sign"])
def test_pooled_null_equals_the_former_null_on_one_blas_thread(kind, monkeypatch):
    """Same seeds: the pooled null (default) and the former sequential path give the same
    surrogate lambda_max bit for bit when the former runs on one BLAS thread (on several, BLAS
    splits its GEMMs differently and the two differ by float32 rounding only)."""
    T, N = 400, 900
    Z = _world(T, N, 4)
    monkeypatch.setattr(sp, "_POOL_MIN_GROUP_FLOPS", 0.0)
    with threadpool_limits(2):
        monkeypatch.setattr(sp, "_NULL_POOL", True)
        pooled, g = sp.null_lambda_max(Z, 12, kind, np.random.default_rng(5))
    monkeypatch.setattr(sp, "_NULL_POOL", False)
    with threadpool_limits(1):
        former, g1 = sp.null_lambda_max(Z, 12, kind, np.random.default_rng(5))
    with threadpool_limits(2):
        former2, _ = sp.null_lambda_max(Z, 12, kind, np.random.default_rng(5))
    assert g == g1 and g < N
    np.testing.assert_array_equal(pooled, former)
    a, b = np.sqrt(T - 1.0), np.sqrt(N)
    sigma = (a + b) * (1 / a + 1 / b) ** (1 / 3) / T
    assert np.abs(pooled - former2).max() < 1e-3 * sigma


def test_pool_is_used_only_with_several_blas_threads_and_groups(monkeypatch):
    """One BLAS thread, a single group or small groups: the sequential loop (no pool is created)."""
    T, N = 200, 300
    Z = _world(T, N, 6)
    created = []

    class Spy(ThreadPoolExecutor):
        def __init__(self, *args, **kwargs):
            created.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(sp, "ThreadPoolExecutor", Spy)
    with threadpool_limits(2):
        if blas_threads() < 2:
            pytest.skip("BLAS runs on one thread here")
        sp.null_lambda_max(Z, 4, "shuffle", np.random.default_rng(7), group_size=50)  # 4 T w S = 160,000 flops
        assert created == []
        monkeypatch.setattr(sp, "_POOL_MIN_GROUP_FLOPS", 4.0 * T * 50 * 4)
        sp.null_lambda_max(Z, 4, "shuffle", np.random.default_rng(7), group_size=N)  # one group
        assert created == []
    with threadpool_limits(1):
        sp.null_lambda_max(Z, 4, "shuffle", np.random.default_rng(7), group_size=50)
    assert created == []
    with threadpool_limits(2):
        sp.null_lambda_max(Z, 4, "shuffle", np.random.default_rng(7), group_size=50)
    assert created == [(2,)]


@pytest.fixture(scope="module")
def speed_quick_run(tmp_path_factory) -> dict:
    """The JSON of one ``benchmarks/bench_speed_audit.py --quick`` run, shared by the tests below."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_speed_audit.py"
    spec = importlib.util.spec_from_file_location("bench_speed_audit", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path_factory.mktemp("speed") / "speed.json"
    module.main(["--quick", "--output", str(out)])
    return json.loads(out.read_text())


def test_speed_benchmark_toy_run(speed_quick_run):
    """benchmarks/bench_speed_audit.py --quick: both paths run, agree, and every roofline line
    has its limit and distance."""
    doc = speed_quick_run
    agree = doc["audit"]["agreement"]
    assert agree["null_new_equals_former_on_one_blas_thread"] is True
    assert agree["audit_eigenvalues_identical"] is True
    assert agree["n_significant"][0] == agree["n_significant"][1]
    assert doc["audit"]["lanczos_steps"] >= 15
    assert doc["limits"]["bandwidth_gb_s"] > 0 and doc["limits"]["sgemm_gflop_s"] > 0
    lines = doc["audit"]["roofline"] + doc["decomposition"]["roofline"]
    assert len(lines) == 4
    for line in lines:
        assert line["limit_s"] == max(line["flop_time_s"], line["memory_time_s"]) > 0
        assert line["x_limit"] == pytest.approx(line["measured_s"] / line["limit_s"])
    assert len(doc["load_average_before"]) == 3 and doc["machine"]["cpu_count"] >= 1


def test_lanczos_trace_records_every_step_without_changing_the_null():
    """The trace hook of the null's recurrence (bench_speed_audit's convergence study): one
    ``(S,)`` row per step from the fifth, the last row the returned values, the numbers the
    same as without it."""
    T, N, S = 200, 500, 6
    Z = _world(T, N, 5)
    plan = sp.surrogate_plan(T, N, S, "shuffle", np.random.default_rng(6), group_size=60)
    plain = sp._lockstep_lanczos_top(Z, plan, S, np.random.default_rng(7), 0.0, 40, np.float32)
    trace: list[np.ndarray] = []
    traced = sp._lockstep_lanczos_top(Z, plan, S, np.random.default_rng(7), 0.0, 40, np.float32, trace=trace)
    np.testing.assert_array_equal(traced, plain)
    rows = np.array(trace)
    assert rows.shape == (40 - 4, S)  # steps 5 .. 40 (tol=0: no early stop at this size)
    np.testing.assert_array_equal(rows[-1], plain)
    # Ritz values grow towards the top eigenvalue (float32 products: up to rounding)
    assert np.all(np.diff(rows, axis=0) >= -1e-6 * np.abs(rows[1:]))
    Zs = sp.apply_surrogate(Z, plan, 0)
    assert rows[-1, 0] == pytest.approx(np.linalg.eigvalsh(Zs @ Zs.T)[-1], rel=1e-5)


def test_speed_benchmark_convergence_and_breakdown(speed_quick_run):
    """bench_speed_audit.py --quick: the convergence table's errors are Ritz values' (at or
    below the converged value), shrink to the default step count, and the decomposition's
    breakdown has every part."""
    doc = speed_quick_run
    conv = doc["audit"]["null_convergence"]
    assert conv["default_steps"] == doc["audit"]["lanczos_steps"]
    rows = {r["steps"]: r for r in conv["by_steps"]}
    assert conv["default_steps"] in rows
    sigma_tol = 1e-3  # float32 products: Ritz values at most this far above the converged one
    for r in rows.values():
        assert r["worst_error_tw"] <= sigma_tol and r["edge_error_tw"] <= sigma_tol
        assert r["median_abs_error_tw"] >= 0
    steps = sorted(rows)
    assert rows[steps[0]]["median_abs_error_tw"] >= rows[conv["default_steps"]]["median_abs_error_tw"]
    floors = [rows[j]["null_floor_s"] for j in steps]
    assert floors == sorted(floors) and floors[0] > 0
    assert conv["converged_change_tw"] < 1e-2
    br = doc["decomposition"]["breakdown"]
    assert set(br) == {"kernel_one_thread_cpu_ms", "kernel_fresh_outputs_one_thread_cpu_ms",
                       "fresh_outputs_fill_cpu_ms", "touched_outputs_fill_cpu_ms"}
    assert all(v > 0 for v in br.values())
