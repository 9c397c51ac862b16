"""Reports a person would send on: HTML files with the mode a plain open() gives, every
cluster member listed (collapsible) and numbered once, the spectrum title inside its
figure, an index.html without the console's last line, and demo.json as strict JSON."""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import riskmodel as rm
from riskmodel import _atomic
from riskmodel.report import html as report_html
from riskmodel.report.audit_figures import plot_spectrum


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@contextlib.contextmanager
def _umask(mask: int):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture(scope="module")
def audit():
    """An audit with one cluster of 30 names (more than the summary line shows)."""
    rng = np.random.default_rng(0)
    u = rng.standard_normal((300, 200)) * 0.02
    u[:, :30] += 0.02 * 0.5 * rng.standard_normal((300, 1))
    stocks = [f"S{i:03d}" for i in range(200)]
    res = xr.DataArray(u, dims=("date", "stock"), coords={
        "date": np.datetime64("2020-01-01") + np.arange(300).astype("timedelta64[D]"), "stock": stocks})
    labels = xr.DataArray(np.where(np.arange(200) < 12, "Energy", "Other"), dims="stock", coords={"stock": stocks})
    return rm.audit_residuals(res, labels, n_null=10)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_write_bytes_follows_the_umask(tmp_path, mask, expected):
    with _umask(mask):
        path = _atomic.write_bytes(tmp_path / "page.html", b"<p>x</p>")
    assert _mode(path) == expected and path.read_bytes() == b"<p>x</p>"
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]  # no temporary left


def test_write_bytes_keeps_a_replaced_files_mode(tmp_path):
    path = tmp_path / "page.html"
    path.write_text("old")
    os.chmod(path, 0o640)
    with _umask(0o022):
        _atomic.write_bytes(path, b"new")
    assert _mode(path) == 0o640 and path.read_text() == "new"


def test_audit_report_and_figures_have_normal_modes(audit, tmp_path):
    with _umask(0o022):
        page = audit.to_html(tmp_path / "audit.html")
        figures = audit.figures(tmp_path / "figures")
    assert _mode(page) == 0o644
    assert {kind: _mode(path) for kind, path in figures.items()} == dict.fromkeys(figures, 0o644)
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in figures.values())


def test_cluster_table_lists_every_member_once_numbered(audit, tmp_path):
    text = audit.to_html(tmp_path / "audit.html").read_text()
    table = text.split("<h2>Clusters</h2>", 1)[1].split("</table>", 1)[0]
    header = re.findall(r"<th>(.*?)</th>", table.split("</thead>")[0])
    assert header[0] == "cluster" and header.count("cluster") == 1 and "" not in header  # no index column
    cluster = audit.clusters[0]
    assert cluster.size > report_html.MEMBERS_SHOWN
    assert "<details><summary>" in table and f"and {cluster.size - report_html.MEMBERS_SHOWN} more</summary>" in table
    full = re.search(r"</summary>(.*?)</details>", table).group(1)
    assert full.split(", ") == cluster.stocks  # every member, in full
    assert "..." not in table and "…" not in table
    # the label rule shows: the cluster is named only when the majority carries the label
    assert f"<td>{cluster.label}</td>" in table and f"<td>{cluster.dominant_label}</td>" in table


def test_small_cluster_members_plain():
    assert report_html._members_cell(["A", "B&C"]) == "A, B&amp;C"


def test_spectrum_title_inside_the_figure(audit):
    fig = plot_spectrum(audit)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.axes[0].title.get_window_extent(renderer)
    width, height = fig.bbox.width, fig.bbox.height
    assert box.x0 >= 0 and box.x1 <= width and box.y1 <= height, (box, width)


def test_demo_index_ends_with_the_story_not_the_console(demo_folder):
    folder, facts, console = demo_folder
    text = (folder / "index.html").read_text()
    assert "wrote " in console.splitlines()[-1]  # the console says where the files went ...
    assert "wrote " not in text and f"{folder}" not in text  # ... the page does not
    assert text.rstrip().endswith("</body></html>")
    mask = os.umask(0)
    os.umask(mask)
    modes = {p.name: _mode(p) for p in folder.iterdir()}
    assert set(modes) >= {"index.html", "audit.html", "demo.json", "factor_returns.png", "rolling_bias.png"}
    assert modes == dict.fromkeys(modes, 0o666 & ~mask), modes  # as open() gives: 0644 under umask 022


def test_demo_json_is_plain_json(demo_folder):
    folder, facts, _ = demo_folder
    raw = (folder / "demo.json").read_text()
    data = json.loads(raw)  # strict: no NaN, no Python reprs
    assert "NaN" not in raw and "'" not in raw
    assert isinstance(data["style_return_correlation"], dict)
    assert all(isinstance(v, float) for v in data["style_return_correlation"].values())
    assert isinstance(data["bias_by_family"]["random"], float)
    assert data["mimicking_identity_error"] == pytest.approx(facts["mimicking_identity_error"], abs=0)
    assert isinstance(data["oil_found"], int)


def test_plain_json():
    from riskmodel.cli.demo import plain_json

    value = {"a": np.float64(1.5), "b": [np.int64(2), float("nan")], 3: {"c": np.inf}}
    assert json.dumps(plain_json(value), allow_nan=False) == '{"a": 1.5, "b": [2, null], "3": {"c": null}}'
