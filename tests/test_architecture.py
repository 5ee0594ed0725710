"""docs/ARCHITECTURE.md describes the registry the code has, and no pass or backend
names an op the registry does not declare."""

from __future__ import annotations

import dataclasses

from resdsl.ir.registry import OpDef, registered
from tests.conftest import ROOT


def test_the_registry_table_lists_every_field_of_opdef():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text[text.index("## The op registry"):text.index("## Adding an op")]
    rows = [line.split("|")[1].strip(" `") for line in section.splitlines()
            if line.startswith("| `")]
    assert rows == [field.name for field in dataclasses.fields(OpDef)]


def test_every_built_in_op_is_declared_whole():
    for name, declared in registered().items():
        assert declared.name == name and declared.summary, name
        assert declared.arity in (0, 1, 2, 3), name  # highway: F(x), x and the gate
        if declared.weighted and name != "block":
            assert declared.torch is not None and declared.label is not None, name
