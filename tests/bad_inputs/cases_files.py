"""Catalogue cases: input files that are missing, of the wrong kind or damaged, and output
targets that must not be destroyed (every command x missing file, directory instead of
file, wrong kind, unknown suffix; -o onto a directory, a read-only file, a stranger's file,
the input itself, a missing or unwritable folder)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import xarray as xr

from _bad_inputs_harness import Case, random_bytes, weights_frame, write_long_csv, write_text

SIM = ("--stocks", "150", "--days", "60")


def _book(tmp, env):
    return write_long_csv(tmp, weights_frame(env), "book.csv")


def _refuse_fit(env):
    """Make a fit that runs anyway fail loudly: the target must be refused before it."""
    import riskmodel as rm

    def no_fit(*args, **kwargs):
        raise AssertionError("the fit ran although its output could not be written")

    env.monkeypatch.setattr(rm.FactorRiskModel, "fit", no_fit)


def _case(case_id, setup, expect, names=(), outputs=(), check=None):
    return Case(case_id, setup, expect, tuple(names), outputs=tuple(outputs), check=check)


# ---------------------------------------------------------------------------------------
# inputs: missing, a directory, the wrong kind, an unknown suffix
# ---------------------------------------------------------------------------------------
def _panel_inputs():
    return {
        "missing": lambda tmp, env: str(tmp / "nope.nc"),
        "directory": lambda tmp, env: str((tmp / "dir.nc").mkdir() or tmp / "dir.nc"),
        "model-file": lambda tmp, env: env.copy("model.nc", tmp),
        "csv-file": lambda tmp, env: write_long_csv(tmp, env.long, "panel.csv"),
        "unknown-suffix": lambda tmp, env: write_text(tmp, "panel.parquet", random_bytes(2000)),
        "text-as-nc": lambda tmp, env: write_text(tmp, "panel.nc", "date,stock\n"),
    }


_PANEL_NAMES = {"missing": "nope.nc", "directory": "dir.nc", "model-file": "model.nc", "csv-file": "panel.csv",
                "unknown-suffix": "panel.parquet", "text-as-nc": "panel.nc"}


def _fit_input(kind, make):
    return _case(f"fit-input-{kind}", lambda tmp, env: ["fit", make(tmp, env), "-o", tmp / "out.nc", "-q"], "error",
                 [_PANEL_NAMES[kind]] + (["panel"] if kind == "model-file" else []))


def _alpha_input(kind, make):
    return _case(f"alpha-panel-{kind}", lambda tmp, env: ["alpha", "value", "--panel", make(tmp, env)], "error",
                 [_PANEL_NAMES[kind]] + (["panel"] if kind == "model-file" else []))


def _model_inputs():
    return {
        "missing": (lambda tmp, env: str(tmp / "nope.nc"), "nope.nc"),
        "directory": (lambda tmp, env: str((tmp / "dir.nc").mkdir() or tmp / "dir.nc"), "dir.nc"),
        "panel-file": (lambda tmp, env: env.copy("panel.nc", tmp), "panel.nc"),
        "csv-file": (lambda tmp, env: write_long_csv(tmp, env.long, "model.csv"), "model.csv"),
        "random-bytes": (lambda tmp, env: write_text(tmp, "model.nc", random_bytes(5000)), "model.nc"),
        "empty-file": (lambda tmp, env: write_text(tmp, "model.nc", b""), "model.nc"),
    }


def _risk_input(kind, make, name):
    return _case(f"risk-model-{kind}", lambda tmp, env: ["risk", make(tmp, env), "--weights", _book(tmp, env)], "error",
                 [name])


def _audit_input(kind, make, name):
    return _case(f"audit-model-{kind}", lambda tmp, env: ["audit", make(tmp, env)], "error", [name])


def _risk_weights_input(kind, make, name):
    return _case(f"risk-weights-{kind}", lambda tmp, env: ["risk", env.copy("model.nc", tmp), "--weights", make(tmp, env)],
                 "error", [name])


_WEIGHTS_INPUTS = {
    "missing": (lambda tmp, env: str(tmp / "nope.csv"), "nope.csv"),
    "directory": (lambda tmp, env: str((tmp / "dir.csv").mkdir() or tmp / "dir.csv"), "dir.csv"),
    "model-file": (lambda tmp, env: env.copy("model.nc", tmp, "weights.nc"), "weights.nc"),
    "random-bytes": (lambda tmp, env: write_text(tmp, "book.csv", random_bytes(3000)), "book.csv"),
}


def _against_input(kind, make, name):
    return _case(f"alpha-against-{kind}", lambda tmp, env: ["alpha", "value", "--panel", env.copy("panel.nc", tmp),
                                                             "--controls", "size", "--against", make(tmp, env)],
                 "error", [name])


def _ts_factors_input(kind, make, name):
    return _case(f"ts-factors-{kind}", lambda tmp, env: ["fit", env.copy("panel.nc", tmp), "-o", tmp / "out.nc",
                                                          "--kind", "time-series", "--factors", make(tmp, env), "-q"],
                 "error", [name])


def _labels_input(kind, make, name):
    return _case(f"labels-{kind}", lambda tmp, env: ["audit", env.copy("model.nc", tmp), "--labels", make(tmp, env)],
                 "error", [name])


def _panel_source(kind, make, name):
    return _case(f"panel-source-{kind}", lambda tmp, env: ["panel", make(tmp, env), "-o", tmp / "out.nc"], "error", [name])


_CSV_INPUTS = {
    "missing": (lambda tmp, env: str(tmp / "nope.csv"), "nope.csv"),
    "directory": (lambda tmp, env: str((tmp / "dir.csv").mkdir() or tmp / "dir.csv"), "dir.csv"),
    "model-file": (lambda tmp, env: env.copy("model.nc", tmp), "model.nc"),
}

INPUTS = (
    [_fit_input(k, m) for k, m in _panel_inputs().items()]
    + [_alpha_input(k, m) for k, m in _panel_inputs().items() if k != "text-as-nc"]
    + [_risk_input(k, m, n) for k, (m, n) in _model_inputs().items()]
    + [_audit_input(k, m, n) for k, (m, n) in _model_inputs().items() if k in ("missing", "panel-file", "csv-file")]
    + [_risk_weights_input(k, m, n) for k, (m, n) in _WEIGHTS_INPUTS.items()]
    + [_against_input(k, m, n) for k, (m, n) in _CSV_INPUTS.items()]
    + [_ts_factors_input(k, m, n) for k, (m, n) in _CSV_INPUTS.items()]
    + [_labels_input(k, m, n) for k, (m, n) in _CSV_INPUTS.items()]
    + [_panel_source(k, m, n) for k, (m, n) in _CSV_INPUTS.items()]
    + [_case("audit-panel-option-model-file",
             lambda tmp, env: ["audit", env.copy("model.nc", tmp), "--labels-from", "value", "--panel",
                               env.copy("model.nc", tmp, "other_model.nc")], "error", ["other_model.nc", "panel"])]
)


# ---------------------------------------------------------------------------------------
# damaged riskmodel files
# ---------------------------------------------------------------------------------------
def _damaged_nc(tmp, env):
    """20 KB of random bytes written into the middle of a valid model file."""
    path = Path(env.copy("model.nc", tmp))
    data = bytearray(path.read_bytes())
    start = len(data) // 2
    data[start:start + 20_000] = random_bytes(20_000)[: len(data) - start]
    path.write_bytes(bytes(data))
    return str(path)


def _damaged_variable_nc(variable):
    """4 KB of random bytes over the last rows of ``variable``'s data in a valid model file
    (the rows the latest forecast reads): the file still opens."""

    def make(tmp, env):
        import h5py

        path = Path(env.copy("model.nc", tmp))
        with h5py.File(path, "r") as h5:
            data = h5[variable]
            if data.chunks is None:  # contiguous (files without checksums)
                start, size = data.id.get_offset() + data.size * data.dtype.itemsize - 4096, 4096
            else:  # the last stored chunk
                info = data.id.get_chunk_info(data.id.get_num_chunks() - 1)
                size = min(4096, info.size)
                start = info.byte_offset + info.size - size
        with open(path, "r+b") as fh:
            fh.seek(start)
            fh.write(random_bytes(size, seed=5))
        return str(path)

    return make


def _truncated_nc(tmp, env):
    path = Path(env.copy("model.nc", tmp))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return str(path)


def _zarr_without(store, variable, chunks_only):
    def make(tmp, env):
        path = Path(env.copy(store, tmp))
        shutil.rmtree(path / variable / "c" if chunks_only else path / variable)
        return str(path)

    return make


def _unknown_kind(tmp, env):
    import riskmodel as rm

    ds = rm.load(env.root / "model.nc").to_dataset()
    ds.attrs["riskmodel_kind"] = "fitted_martian_model"
    rm.save(ds, tmp / "model.nc")
    return str(tmp / "model.nc")


DAMAGED = [
    _case("risk-model-random-bytes-inside-nc", lambda tmp, env: ["risk", _damaged_nc(tmp, env), "--weights",
                                                                  _book(tmp, env)], "error", ["model.nc"]),
    _case("risk-model-random-bytes-in-specific-var", lambda tmp, env: ["risk", _damaged_variable_nc("specific_var")(
        tmp, env), "--weights", _book(tmp, env)], "error", ["model.nc", "specific_var"]),
    _case("risk-model-random-bytes-in-factor-cov", lambda tmp, env: ["risk", _damaged_variable_nc("factor_cov")(
        tmp, env), "--weights", _book(tmp, env)], "error", ["model.nc", "factor_cov"]),
    _case("risk-model-truncated-nc", lambda tmp, env: ["risk", _truncated_nc(tmp, env), "--weights", _book(tmp, env)],
          "error", ["model.nc"]),
    _case("risk-zarr-model-missing-a-chunk", lambda tmp, env: ["risk", _zarr_without("model.zarr", "factor_cov", True)(
        tmp, env), "--weights", _book(tmp, env)], "error", ["model.zarr", "factor_cov"]),
    _case("risk-zarr-model-missing-specific-var", lambda tmp, env: ["risk", _zarr_without(
        "model.zarr", "specific_var", False)(tmp, env), "--weights", _book(tmp, env)], "error",
        ["model.zarr", "specific_var"]),
    _case("fit-zarr-panel-missing-returns-chunks", lambda tmp, env: ["fit", _zarr_without("panel.zarr", "returns", True)(
        tmp, env), "-o", tmp / "out.nc", "-q"], "error", ["panel.zarr", "returns"]),
    _case("fit-zarr-panel-without-metadata", lambda tmp, env: ["fit", (lambda p: (os.remove(Path(p) / "zarr.json"), p)[1])(
        env.copy("panel.zarr", tmp)), "-o", tmp / "out.nc", "-q"], "error", ["panel.zarr"]),
    _case("risk-model-of-unknown-kind", lambda tmp, env: ["risk", _unknown_kind(tmp, env), "--weights", _book(tmp, env)],
          "error", ["model.nc", "fitted_martian_model"]),
]


# ---------------------------------------------------------------------------------------
# outputs that must not be destroyed
# ---------------------------------------------------------------------------------------
def _precious_dir(tmp, name):
    folder = tmp / name / "sub"
    folder.mkdir(parents=True)
    (tmp / name / "notes.txt").write_text("precious\n")
    return str(tmp / name)


def _read_only_copy(tmp, env):
    path = Path(env.copy("panel.nc", tmp, "ro.nc"))
    path.chmod(0o444)
    return str(path)


def _stranger_nc(tmp, env):
    path = tmp / "climate.nc"
    xr.Dataset({"temperature": ("time", [1.0, 2.0])}, attrs={"title": "not ours"}).to_netcdf(path, engine="h5netcdf")
    return str(path)


def _read_only_folder(tmp, env):
    """An unwritable folder (even for root: /proc); the fit must be refused before it runs."""
    _refuse_fit(env)
    if os.geteuid() == 0:
        return "/proc/riskmodel-catalogue.nc"
    folder = tmp / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return str(folder / "model.nc")


def _check_model(tmp, env, result):
    import riskmodel as rm

    assert type(rm.load(tmp / "model.nc")).__name__ == "FittedFactorModel"


OUTPUTS = [
    _case("simulate-o-existing-directory-with-files", lambda tmp, env: ["simulate", "-o", _precious_dir(tmp, "important.nc"),
                                                                        *SIM], "error", ["important.nc"]),
    _case("simulate-o-non-zarr-directory", lambda tmp, env: ["simulate", "-o", _precious_dir(tmp, "data.zarr"), *SIM],
          "error", ["data.zarr"]),
    _case("simulate-o-read-only-target", lambda tmp, env: ["simulate", "-o", _read_only_copy(tmp, env), *SIM], "error",
          ["ro.nc"]),
    _case("simulate-o-stranger-netcdf", lambda tmp, env: ["simulate", "-o", _stranger_nc(tmp, env), *SIM], "error",
          ["climate.nc"]),
    _case("simulate-o-text-file-named-nc", lambda tmp, env: ["simulate", "-o", write_text(tmp, "notes.nc", "mine\n"), *SIM],
          "error", ["notes.nc"]),
    _case("simulate-o-model-file", lambda tmp, env: ["simulate", "-o", env.copy("model.nc", tmp), *SIM], "error",
          ["model.nc"]),
    _case("simulate-o-missing-folder", lambda tmp, env: ["simulate", "-o", tmp / "nofolder" / "p.nc", *SIM], "error",
          ["nofolder"]),
    _case("simulate-o-unknown-suffix", lambda tmp, env: ["simulate", "-o", tmp / "p.txt", *SIM], "error", ["p.txt"]),
    _case("fit-o-unknown-suffix", lambda tmp, env: ["fit", env.copy("panel.nc", tmp), "-o", tmp / "m.h5", "-q"], "error",
          ["m.h5", "suffix"]),
    _case("panel-o-unknown-suffix", lambda tmp, env: ["panel", write_long_csv(tmp, env.long, "p.csv"), "-o",
                                                      tmp / "p.parquet"], "error", ["p.parquet", "suffix"]),
    _case("simulate-o-overwrites-own-panel", lambda tmp, env: ["simulate", "-o", env.copy("panel.nc", tmp), *SIM], "ok",
          outputs=["panel.nc"]),
    _case("fit-o-equals-input", lambda tmp, env: (lambda p: ["fit", p, "-o", p, "-q"])(env.copy("panel.nc", tmp)), "error",
          ["panel.nc"]),
    _case("fit-o-panel-file", lambda tmp, env: ["fit", env.copy("panel.nc", tmp), "-o", env.copy("panel.nc", tmp, "p2.nc"),
                                                "-q"], "error", ["p2.nc"]),
    _case("fit-o-stranger-netcdf", lambda tmp, env: ["fit", env.copy("panel.nc", tmp), "-o", _stranger_nc(tmp, env), "-q"],
          "error", ["climate.nc"]),
    _case("fit-o-existing-directory", lambda tmp, env: ["fit", env.copy("panel.nc", tmp), "-o", _precious_dir(tmp, "m.nc"),
                                                        "-q"], "error", ["m.nc"]),
    _case("fit-o-missing-folder-before-fit", lambda tmp, env: (_refuse_fit(env), ["fit", env.copy("panel.nc", tmp), "-o",
                                                                                   tmp / "nofolder" / "m.nc", "-q"])[1],
          "error", ["nofolder"]),
    _case("fit-o-read-only-folder-before-fit", lambda tmp, env: ["fit", env.copy("panel.nc", tmp), "-o",
                                                                 _read_only_folder(tmp, env), "-q"], "error",
          ["riskmodel-catalogue.nc" if os.geteuid() == 0 else "ro"]),
    _case("fit-o-overwrites-own-model", lambda tmp, env: ["fit", env.copy("panel.nc", tmp), "-o", env.copy("model.nc", tmp),
                                                          "-q"], "ok", outputs=["model.nc"], check=_check_model),
    _case("fit-o-zarr", lambda tmp, env: ["fit", env.copy("panel.nc", tmp), "-o", tmp / "model.zarr", "-q"], "ok",
          outputs=["model.zarr"]),
    _case("panel-o-equals-source", lambda tmp, env: (lambda p: ["panel", p, "-o", p])(
        write_long_csv(tmp, env.long, "panel.nc")), "error", ["panel.nc"]),
    _case("demo-o-existing-file", lambda tmp, env: ["demo", "-o", write_text(tmp, "report", "mine\n"), "--stocks", "60",
                                                    "--days", "60"], "error", ["report"]),
    _case("audit-report-missing-folder-created", lambda tmp, env: ["audit", env.copy("model.nc", tmp), "--report",
                                                           tmp / "nofolder" / "a.html"], "ok", outputs=["nofolder"]),
    _case("audit-report-is-directory", lambda tmp, env: ["audit", env.copy("model.nc", tmp), "--report",
                                                         _precious_dir(tmp, "a.html")], "error", ["a.html"]),
    _case("audit-report-equals-model", lambda tmp, env: (lambda p: ["audit", p, "--report", p])(env.copy("model.nc", tmp)),
          "error", ["model.nc"]),
]


CASES = INPUTS + DAMAGED + OUTPUTS
