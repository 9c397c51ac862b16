"""The HTML reports in a real browser: headless Chromium (the distribution's package) loads
the demo's index.html and audit.html, every figure decodes and no error or console error
is reported; both pages render to a PNG. Skipped where no Chromium is installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "report_screenshots.py"


def _browser_module():
    spec = importlib.util.spec_from_file_location("report_screenshots", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shots = _browser_module()
BROWSER = shots.find_browser()
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium on PATH (apt-get install chromium)")

#: Figures each page embeds.
FIGURES = {"index.html": 2, "audit.html": 4}


@pytest.mark.parametrize("page", sorted(FIGURES))
def test_page_loads_its_figures_without_errors(demo_folder, page):
    folder, _, _ = demo_folder
    check = shots.check_page(folder / page, BROWSER)
    assert len(check["images"]) == FIGURES[page]
    for image in check["images"]:
        assert image["complete"] and image["width"] >= 300 and image["height"] >= 200, image
    assert check["errors"] == [] and check["console"] == [] and check["browser_console"] == []


@pytest.mark.parametrize("page", sorted(FIGURES))
def test_page_renders_to_png(demo_folder, tmp_path, page):
    import matplotlib.image

    folder, _, _ = demo_folder
    png = shots.screenshot(folder / page, tmp_path / "shot.png", BROWSER, window=(900, 1200), scale=0.5)
    pixels = matplotlib.image.imread(png)
    assert pixels.shape[:2] == (600, 450)
    assert pixels[..., :3].std() > 0.05  # not a blank page


def test_checker_sees_a_broken_figure_and_a_console_error(tmp_path):
    """The check can fail: a figure that does not decode and a script's console.error."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>t</title></head><body>'
                    '<img alt="bad" src="data:image/png;base64,AAAA"><img alt="gone" src="missing.png">'
                    '<script>console.error("boom")</script></body></html>\n')
    check = shots.check_page(page, BROWSER)
    assert [i["width"] for i in check["images"]] == [0, 0]
    assert any("failed to load <img>" in e for e in check["errors"])
    assert check["console"] == ["error: boom"]
