"""Helpers shared by the tests: paths, and running the CLI in-process."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from resdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent
ARCHS = ROOT / "archs"

# A hang guard, not a speed limit: the seconds after which a test calls a subprocess or a
# wait stuck. Far above any run's time on a loaded machine, so that only a hang reaches it.
STUCK_AFTER_S = 600


def wait_for_metrics(out: Path, count: int, process: subprocess.Popen) -> None:
    """Until `out`/metrics.jsonl holds `count` training records; fails at once if the run
    ends first, and after STUCK_AFTER_S if it never gets there."""
    metrics, deadline = out / "metrics.jsonl", time.monotonic() + STUCK_AFTER_S
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and metrics.read_text().count('"train"') >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"the run did not reach {count} training records: exit {process.poll()}")


@pytest.fixture
def cli(capsys):
    """Run `resdsl ARGS...` in-process; return (exit code, stdout, stderr)."""

    def run(*args: str):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:  # argparse's usage errors and --help
            code = exit_.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def write_arch(tmp_path):
    """Write an .arch file under a temporary folder and return its path."""

    def write(text: str, name: str = "net.arch") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
