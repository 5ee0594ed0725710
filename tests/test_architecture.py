"""docs/ARCHITECTURE.md describes the registry the code has, no pass or backend names an
op the registry does not declare, and the package keeps the shape the document gives it:
modules readable in one sitting, imports that follow the pipeline and never circle."""

from __future__ import annotations

import ast
import dataclasses

import networkx as nx

from resdsl.ops.registry import OpDef, registered
from tests.conftest import ROOT

PACKAGE = ROOT / "resdsl"

# The pipeline's stages, first to last: a module may import its own stage and earlier ones.
STAGES = (
    ("resdsl.errors", "resdsl.safety", "resdsl.output", "resdsl.version", "resdsl.bundled"),
    ("resdsl.ops",),
    ("resdsl.frontend",),
    ("resdsl.ir",),
    ("resdsl.passes",),
    ("resdsl.backends",),
    ("resdsl.training",),
    ("resdsl.evaluation",),
    ("resdsl.api", "resdsl.pytorch_api", "resdsl"),
    ("resdsl.cli", "resdsl.__main__"),
)


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


def _modules() -> dict[str, tuple[ast.Module, str]]:
    """Each module of the package: its syntax tree and the package its imports are relative to."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if parts[-1] == "__init__" else name.rsplit(".", 1)[0]
        modules[name] = (ast.parse(path.read_text(encoding="utf-8")), package)
    return modules


def _imports(modules: dict[str, tuple[ast.Module, str]]) -> nx.DiGraph:
    """Module → the resdsl modules it imports, lazy imports inside functions included."""
    graph = nx.DiGraph()
    for name, (tree, package) in modules.items():
        graph.add_node(name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    kept = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(kept + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            else:
                continue
            graph.add_edges_from((name, target) for target in targets
                                 if target in modules and target != name)
    return graph


def _stage(module: str) -> int:
    matches = [(len(prefix), index) for index, prefixes in enumerate(STAGES) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} is in no stage of STAGES"
    return max(matches)[1]


def test_every_module_reads_in_one_sitting():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 300}
    assert long == {}


def test_no_import_circle():
    assert list(nx.simple_cycles(_imports(_modules()))) == []


def test_no_module_imports_a_later_stage_of_the_pipeline():
    graph = _imports(_modules())
    upward = sorted((a, b) for a, b in graph.edges if _stage(b) > _stage(a))
    assert upward == []


def test_the_import_walk_sees_lazy_and_relative_imports():
    """The walk itself, on the imports it must not miss."""
    modules = {"resdsl.a": (ast.parse("def f():\n    from resdsl.b import x\n"), "resdsl"),
               "resdsl.b": (ast.parse("from . import a\n"), "resdsl")}
    assert [sorted(c) for c in nx.simple_cycles(_imports(modules))] == [["resdsl.a", "resdsl.b"]]
