"""The README's "Your first network" as a new user follows it: the file it shows, the
counts, the error and the variants it prints are what resdsl gives today."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT

SECTION = (ROOT / "README.md").read_text().split("## Your first network", 1)[1] \
    .split("\n## ", 1)[0]
BLOCKS = re.findall(r"```\n(.*?)```", SECTION, re.S)


@pytest.fixture
def first(tmp_path, monkeypatch):
    """first.arch as the README writes it, in a folder of its own."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "first.arch").write_text(BLOCKS[0])
    return tmp_path / "first.arch"


def test_the_counts_are_what_the_readme_shows(cli, first):
    code, out, err = cli("flops", "first.arch")
    assert code == 0 and err == ""
    assert out.endswith(BLOCKS[1])


def test_the_error_is_the_one_the_readme_shows(cli, first):
    first.write_text(first.read_text().replace("bottleneck(128) x 3", "bottleneck(100) x 3"))
    code, out, err = cli("flops", "first.arch")
    assert code == 1 and err == BLOCKS[2]


def test_the_variants_are_the_columns_the_readme_shows(cli, first):
    code, out, err = cli("flops", "first.arch", "first.arch@C=8", "first.arch@act=relu")
    assert code == 0 and err == ""
    header, total = BLOCKS[3].split("...\n")
    assert header in out and total in out


def test_render_and_compile_write_their_files(cli, first):
    pytest.importorskip("torch")
    code, _, err = cli("compile", "first.arch", "-o", "first.py")
    assert code == 0 and "wrote first.py: class First, 2,296,296 params" in err
    code, _, err = cli("render", "first.arch", "-o", "first.dot")
    assert code == 0 and "digraph" in (first.parent / "first.dot").read_text()
