"""The catalogue of bad inputs, faults and misuses (issue 17), through the CLI and the API.

Each case (tables in ``tests/bad_inputs/cases_*.py``, machinery in
``tests/bad_inputs/harness.py``) states the outcome issue 17 asks for: a one-line named
error with exit 2, a warning naming the thing, or acceptance. Every case checks the exit
code, that no traceback escapes, that the message names what is at fault, and that
nothing on disk changed except a successful output (bytes, mode and mtime of every file
under the case's folder, before and after; no temporary left).

Cases that fail today are listed in :data:`KNOWN_GAPS` and run as strict xfails: a fix
flips the case to XPASS, which fails until its entry is removed here. Never weaken a
case to make it pass. ``FIXPLAN.md`` (worktree root) says where each fix belongs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import warnings
from pathlib import Path

import pytest

#: case id -> what is wrong today (each such case is a strict xfail).
KNOWN_GAPS: dict[str, str] = {
}

_HERE = Path(__file__).resolve().parent / "bad_inputs"


def _load(name: str, alias: str):
    spec = importlib.util.spec_from_file_location(alias, _HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    spec.loader.exec_module(module)
    return module


harness = _load("harness", "_bad_inputs_harness")
_TABLES = ("cases_csv", "cases_files", "cases_options", "cases_api")
CASES = [case for table in _TABLES for case in _load(table, f"_bad_inputs_{table}").CASES]


def test_catalogue_is_complete():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    assert len(ids) >= 130, len(ids)
    assert set(KNOWN_GAPS) <= set(ids), sorted(set(KNOWN_GAPS) - set(ids))


def _params():
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[case.id])] if case.id in KNOWN_GAPS else []
        yield pytest.param(case, id=case.id, marks=marks)


@pytest.fixture(scope="session")
def catalogue_env(tmp_path_factory):
    """One simulated panel (60 stocks x 120 days, 4 industries) and its fit, written once
    as .nc and .zarr files, a long frame, for every case to copy from."""
    import riskmodel as rm

    root = tmp_path_factory.mktemp("catalogue_inputs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = rm.simulate(n_stocks=60, n_days=120, seed=3, n_industries=4)
        keep = ["returns", "market_cap", "industry", *harness.STYLES]
        panel = panel[keep]
        fit = rm.FactorRiskModel(progress=False).fit(panel)
    rm.save(panel, root / "panel.nc")
    rm.save(panel, root / "panel.zarr")
    rm.save(fit, root / "model.nc")
    rm.save(fit, root / "model.zarr")
    long = panel[["returns", "market_cap", *harness.STYLES]].to_dataframe().reset_index()
    long["industry"] = panel["industry"].sel(stock=long["stock"].to_numpy()).to_numpy()
    long["date"] = long["date"].dt.strftime("%Y-%m-%d")
    return harness.Env(root=root, panel=panel, fit=fit, long=long)


@pytest.mark.parametrize("case", list(_params()))
def test_bad_input(case, catalogue_env, tmp_path, capsys, monkeypatch):
    env = catalogue_env
    env.monkeypatch = monkeypatch
    work = tmp_path / "case"
    work.mkdir()
    monkeypatch.chdir(work)
    try:
        target = case.setup(work, env)
        before = harness.snapshot(work)
        capsys.readouterr()
        with harness.address_space_cap() if case.memory_cap else contextlib.nullcontext():
            if callable(target):
                result = _run_api(case, target)
            else:
                result = _run_cli(case, target, capsys)
        after = harness.snapshot(work)
        changed = harness.changed_paths(before, after)
        if case.expect == "error":
            assert changed == [], f"an error changed the disk: {changed}"
        else:
            assert harness.outside_outputs(changed, case.outputs) == [], f"changed besides the output: {changed}"
            assert not [p for p in changed if Path(p).name.startswith(".")], f"temporaries left: {changed}"
        if case.check is not None and case.expect != "error":
            case.check(work, env, result)
    finally:
        harness.restore_permissions(work)


def _run_cli(case, argv, capsys):
    from riskmodel.cli import EXIT_USER_ERROR, main

    argv = [str(a) for a in argv]
    command = argv[0]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = harness.stderr_lines(err)
    errors = [line for line in lines if line.startswith(f"riskmodel {command}: error:")]
    if case.expect == "error":
        assert code == EXIT_USER_ERROR, f"exit {code}, stderr: {err}"
        assert len(errors) == 1, err
        others = [line for line in lines if line not in errors and not harness.is_noise(line, command)]
        assert others == [], err
        for name in case.names:
            assert name in errors[0], f"{name!r} not named in: {errors[0]}"
        return code
    assert code == 0, f"exit {code}, stderr: {err}"
    assert errors == [], err
    if case.expect == "warning":
        warned = [line for line in lines if line.startswith(f"riskmodel {command}: warning:")]
        assert any(all(name in line for name in case.names) for line in warned), (
            f"no warning naming {case.names}: {err}"
        )
    return code


def _run_api(case, call):
    if case.expect == "error":
        with pytest.raises(Exception) as info:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                call()
        assert isinstance(info.value, case.exc), f"{type(info.value).__name__}: {info.value}"
        for name in case.names:
            assert name in str(info.value), f"{name!r} not named in: {info.value}"
        return info.value
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    if case.expect == "warning":
        named = [w for w in caught if issubclass(w.category, case.exc)
                 and all(name in str(w.message) for name in case.names)]
        assert named, f"no {case.exc.__name__} naming {case.names}: {[str(w.message) for w in caught]}"
    return result
