"""Open the demo's HTML reports in a real browser (headless Chromium) and take screenshots.

Runs ``riskmodel demo`` into a temporary folder, then for ``index.html`` and ``audit.html``:

1. loads a copy of the page with a small checking script put first in ``<head>``: it
   records every error event (a script error, an image or other resource that fails to
   load) and every ``console.error`` / ``console.warn`` call, and once the page has loaded
   writes, for every ``<img>``, whether it decoded and its natural size; Chromium prints
   the resulting DOM (``--dump-dom``) and its own console log (``--enable-logging``);
2. renders the unmodified page to a PNG (``--screenshot``) at a fixed window size, then
   stores it with a 64-colour palette (small files for the docs).

::

    python docs/report_screenshots.py            # docs/figures/report_*.png and report_screenshots.json

``tests/report/test_browser.py`` runs the same checks on a smaller demo (skipped where no
Chromium is installed). The browser is the distribution's package (Debian: ``apt-get
install chromium``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chromium-headless-shell")
#: Window size (CSS pixels) and device scale of the screenshots: small PNGs for the docs.
WINDOW = (1100, 1500)
SCALE = 0.75
_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
          "--disable-extensions", "--mute-audio", "--allow-file-access-from-files")

_CHECKER = """<script>
(function () {
  var seen = {errors: [], console: []};
  window.addEventListener("error", function (e) {
    var t = e.target;
    seen.errors.push(t && t !== window ? "failed to load <" + t.tagName.toLowerCase() + "> " +
                     String(t.src || t.href || "").slice(0, 60) : String(e.message));
  }, true);
  ["error", "warn"].forEach(function (level) {
    var original = console[level];
    console[level] = function () {
      seen.console.push(level + ": " + Array.prototype.join.call(arguments, " "));
      return original.apply(console, arguments);
    };
  });
  window.addEventListener("load", function () {
    seen.images = Array.prototype.map.call(document.images, function (img) {
      return {alt: img.alt, complete: img.complete, width: img.naturalWidth, height: img.naturalHeight};
    });
    seen.title = document.title;
    var out = document.createElement("pre");
    out.id = "riskmodel-browser-check";
    out.textContent = JSON.stringify(seen);
    document.body.appendChild(out);
  });
})();
</script>"""


def find_browser() -> str | None:
    """The path of a Chromium-family browser on PATH, or None."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_version(browser: str) -> str:
    return subprocess.run([browser, "--version"], capture_output=True, text=True, timeout=60).stdout.strip()


def _run(browser: str, args: list[str], profile: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([browser, *_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=timeout)


def console_errors(log: str) -> list[str]:
    """The page's console messages of level error or warning in Chromium's log
    (``--enable-logging=stderr``: lines ``...:ERROR:CONSOLE(n)] "message", source: ...``)."""
    return [line for line in log.splitlines()
            if re.search(r":(ERROR|WARNING):CONSOLE", line) or "Uncaught" in line]


def check_page(html_file: Path, browser: str) -> dict:
    """Load ``html_file`` with the checking script; the images, errors and console messages.

    Returns
    -------
    dict
        ``images`` (alt, complete, natural width and height of each ``<img>``), ``errors``
        (error events), ``console`` (``console.error``/``warn`` calls) and
        ``browser_console`` (console lines of level warning or error in Chromium's log).
    """
    text = Path(html_file).read_text(encoding="utf-8")
    if "<head>" not in text:
        raise ValueError(f"{html_file}: no <head> to put the checking script in")
    with tempfile.TemporaryDirectory(prefix="rm-browser-") as tmp:
        probe = Path(tmp) / Path(html_file).name
        probe.write_text(text.replace("<head>", "<head>" + _CHECKER, 1), encoding="utf-8")
        done = _run(browser, ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom",
                              probe.as_uri()], Path(tmp) / "profile")
    match = re.search(r'<pre id="riskmodel-browser-check">(.*?)</pre>', done.stdout, re.S)
    if match is None:
        raise RuntimeError(f"{browser} printed no check result for {html_file} (exit {done.returncode}): "
                           f"{done.stderr[-500:]}")
    import html

    result = json.loads(html.unescape(match.group(1)))
    result["browser_console"] = console_errors(done.stderr)
    return result


def screenshot(html_file: Path, png: Path, browser: str, window: tuple[int, int] = WINDOW,
               scale: float = SCALE) -> Path:
    """Render the page as it is to ``png`` (the top ``window`` of it, at ``scale``)."""
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rm-browser-") as tmp:
        done = _run(browser, [f"--window-size={window[0]},{window[1]}", f"--force-device-scale-factor={scale}",
                              f"--screenshot={png}", Path(html_file).resolve().as_uri()], Path(tmp) / "profile")
    if done.returncode != 0 or not png.exists():
        raise RuntimeError(f"{browser} wrote no screenshot of {html_file} (exit {done.returncode}): {done.stderr[-500:]}")
    return png


def shrink_png(png: Path, colours: int = 64) -> Path:
    """Rewrite ``png`` with a palette of ``colours`` (Pillow, a matplotlib dependency): a
    page of text and plots loses nothing visible and the file a third of its size."""
    from PIL import Image

    with Image.open(png) as image:
        small = image.convert("RGB").quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
    small.save(png, optimize=True)
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", default=str(DOCS / "figures"), help="folder of the PNGs and the JSON")
    parser.add_argument("--stocks", type=int, default=600, help="demo size (default: the demo's own)")
    parser.add_argument("--days", type=int, default=1000)
    args = parser.parse_args(argv)
    browser = find_browser()
    if browser is None:
        print("no Chromium found (apt-get install chromium)", file=sys.stderr)
        return 1
    out = Path(args.output)
    record: dict = {"browser": browser_version(browser), "platform": platform.platform(),
                    "demo": {"stocks": args.stocks, "days": args.days}, "window": list(WINDOW), "scale": SCALE,
                    "palette_colours": 64, "load_average": [round(x, 2) for x in os.getloadavg()],
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "pages": {}}
    with tempfile.TemporaryDirectory(prefix="rm-demo-") as tmp:
        demo = Path(tmp) / "demo"
        subprocess.run([sys.executable, "-m", "riskmodel.cli", "demo", "-o", str(demo), "--stocks", str(args.stocks),
                        "--days", str(args.days)], check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "MPLBACKEND": "Agg"})
        for page in ("index", "audit"):
            check = check_page(demo / f"{page}.html", browser)
            png = shrink_png(screenshot(demo / f"{page}.html", out / f"report_{page}.png", browser))
            record["pages"][f"{page}.html"] = {
                "images": len(check["images"]),
                "images_loaded": sum(bool(i["complete"] and i["width"] > 0) for i in check["images"]),
                "errors": check["errors"], "console": check["console"], "browser_console": check["browser_console"],
                "screenshot": png.name, "screenshot_bytes": png.stat().st_size,
            }
    (out / "report_screenshots.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record["pages"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
