"""Progress bars only where someone watches: a terminal, not a pipe or a log file."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios
import sys

import pytest

_BAR = ("from riskmodel._params import StageProgress\n"
        "with StageProgress(['first stage', 'second stage'], {enabled}) as bar:\n"
        "    bar.advance(); bar.advance()\n")


def _run(code: str, stderr) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], stderr=stderr, stdout=subprocess.PIPE, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


@pytest.mark.parametrize("enabled", ["True", "None"])
def test_no_bar_into_a_pipe(enabled):
    done = _run(_BAR.format(enabled=enabled), subprocess.PIPE)
    assert done.returncode == 0 and done.stderr == b""


@pytest.mark.parametrize("enabled, shown", [("True", True), ("None", True), ("False", False)])
def test_bar_on_a_terminal(enabled, shown):
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 wide
    try:
        done = _run(_BAR.format(enabled=enabled), follower)
        os.close(follower)
        follower = None
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal's other end is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if follower is not None:
            os.close(follower)
        os.close(leader)
    assert done.returncode == 0
    text = b"".join(chunks).decode(errors="replace")
    assert ("stage" in text) is shown, text


def test_fit_into_a_log_file_has_no_bar(tmp_path):
    from riskmodel.cli import main

    panel = tmp_path / "panel.nc"
    assert main(["simulate", "-o", str(panel), "--stocks", "150", "--days", "300"]) == 0
    log = tmp_path / "fit.log"
    with open(log, "wb") as err:
        done = subprocess.run([sys.executable, "-m", "riskmodel.cli", "fit", str(panel), "-o", str(tmp_path / "m.nc")],
                              stderr=err, stdout=subprocess.PIPE, timeout=600,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, log.read_text()
    text = log.read_text()
    assert "\r" not in text and "stage" not in text and "exposures" not in text, text
