"""Helpers shared by the tests: paths, and running the CLI in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from resdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent
ARCHS = ROOT / "archs"


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
