"""The README's "Designing a network" as a user follows it: each command it shows prints
the lines it shows (`...` stands for lines left out, and `.../archs/` for the folder)."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.conftest import ARCHS, ROOT

SECTION = (ROOT / "README.md").read_text().split("## Designing a network", 1)[1] \
    .split("\n## ", 1)[0]
COMMANDS = re.findall(r"```\n\$ resdsl (.*?)\n(.*?)```", SECTION, re.S)


@pytest.mark.parametrize("command, shown", COMMANDS, ids=[c.split()[0] for c, _ in COMMANDS])
def test_each_command_prints_what_the_readme_shows(cli, command, shown):
    code, out, _ = cli(*shlex.split(command))
    assert code == 0
    lines = out.replace(str(ARCHS), ".../archs").splitlines()
    for line in shown.splitlines():
        if line != "...":
            assert line in lines, line


def test_the_feature_info_is_what_the_readme_shows():
    pytest.importorskip("torch")
    import resdsl  # noqa: F401  (the README's expression names it)

    expression, shown = re.search(r">>> (.*)\n(.*)\n", SECTION).groups()
    assert repr(eval(expression)) == shown


def test_there_is_one_command_for_each_question():
    assert [c.split()[0] for c, _ in COMMANDS] == ["flops", "diff", "memory", "latency"]
