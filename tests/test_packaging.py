"""What a new user meets first: every import declared, a wheel that works from any
directory, and CI running the README's own set-up and test commands."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
import zipfile

import pytest

from tests.conftest import ROOT

import tomllib

# The folders whose imports an extra must declare, and the extra that declares them.
EXTRA_OF = {"tests": "test", "examples": "examples", "benchmarks": "bench"}
# Distributions whose import name differs from their name on PyPI.
DISTRIBUTION = {"PIL": "pillow", "sklearn": "scikit-learn"}


def _requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower()


def _imports(path) -> set[str]:
    """Top-level modules a file imports: import statements anywhere, pytest.importorskip,
    and the code strings it hands to a subprocess."""
    found: set[str] = set()
    trees = [ast.parse(path.read_text(encoding="utf-8"))]
    while trees:
        for node in ast.walk(trees.pop()):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(node.module.split(".")[0])
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "importorskip"
                  and isinstance(node.args[0], ast.Constant)):
                found.add(node.args[0].value.split(".")[0])
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and "import " in node.value:
                try:
                    trees.append(ast.parse(textwrap.dedent(node.value)))
                except SyntaxError:
                    pass  # prose that mentions importing
    return found


@pytest.mark.parametrize("folder", sorted(EXTRA_OF))
def test_every_import_is_declared(folder):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {_requirement_name(r) for r in
                project["dependencies"] + project["optional-dependencies"][EXTRA_OF[folder]]}
    local = {"resdsl", "tests", "examples"} | {p.stem for p in (ROOT / folder).glob("*.py")}
    undeclared = {}
    for path in sorted((ROOT / folder).glob("*.py")):
        for module in _imports(path) - local - set(sys.stdlib_module_names):
            if DISTRIBUTION.get(module, module).lower() not in declared:
                undeclared.setdefault(module, path.name)
    assert not undeclared, (f"imported in {folder}/ but not declared in the "
                            f"'{EXTRA_OF[folder]}' extra of pyproject.toml: {undeclared}")


def test_the_import_reader_finds_what_a_file_imports():
    sample = ROOT / "tests" / "data" / "imports_sample.txt"
    assert _imports(sample) == {"os", "PIL", "sklearn", "onnxruntime", "fvcore"}


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory):
    """resdsl built as a wheel (as `pip install .` builds it) and unpacked into a folder
    of its own, which stands for site-packages."""
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
                    str(ROOT)], check=True, capture_output=True)
    site = tmp_path_factory.mktemp("site")
    (wheel,) = wheels.glob("resdsl-*.whl")
    zipfile.ZipFile(wheel).extractall(site)
    return site


@pytest.mark.parametrize("where", ["checkout root", "elsewhere"])
def test_a_plain_install_works_from_any_directory(installed_wheel, where, tmp_path):
    """From the checkout root the checkout's own `resdsl/` shadows the installed one, and
    has no `resdsl.grammars` package: it must find the grammar and archs all the same."""
    cwd = ROOT if where == "checkout root" else tmp_path
    env = {"PYTHONPATH": str(installed_wheel), "PATH": "/usr/bin:/bin"}
    script = "import resdsl; print(resdsl.__file__); print(resdsl.count('resnet50').macs)"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr
    origin, macs = proc.stdout.split()
    assert macs == "3857973248"
    assert origin.startswith(str(ROOT if where == "checkout root" else installed_wheel))
    proc = subprocess.run([sys.executable, "-m", "resdsl", "flops", "resnet152", "--json"],
                          capture_output=True, text=True, cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr
    assert '"macs":11282415616' in proc.stdout


def test_the_wheel_ships_the_grammar_and_every_arch(installed_wheel):
    shipped = {p.name for p in (installed_wheel / "resdsl" / "archs").glob("*.arch")}
    assert shipped == {p.name for p in (ROOT / "archs").glob("*.arch")}
    assert (installed_wheel / "resdsl" / "grammars" / "arch.lark").is_file()


def test_ci_runs_the_readme_commands():
    """`.ci/run` is the README's promise, kept: its two commands, word for word."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = readme[readme.index("## Quick start"):readme.index("## What the numbers mean")]
    commands = re.findall(r"```bash\n(.*?)\n```", quick_start, re.S)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert len(commands) == 2 and all(command in ci for command in commands), commands


def test_the_declared_floors_are_the_versions_ci_tested():
    """pyproject's lowest versions of Python, torch, lark and networkx are those of
    constraints.txt, which setup.sh and .ci/run install: no floor claims more than a
    run has shown. The version is written once, in resdsl/version.py."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text()
                  .splitlines() if "==" in line and not line.startswith("#"))
    floors = dict(re.fullmatch(r"([\w-]+)>=([\w.]+)", requirement).groups()
                  for requirement in project["dependencies"])
    assert {name: floors[name] for name in ("torch", "lark", "networkx")} == \
        {name: pinned[name] for name in ("torch", "lark", "networkx")}
    tested = re.search(r"Python (3\.\d+)", (ROOT / "constraints.txt").read_text())[1]
    assert project["requires-python"] == f">={tested}"
    assert project["dynamic"] == ["version"] and "version" not in project
    assert "-c constraints.txt" in (ROOT / "setup.sh").read_text()


def test_the_wheel_ships_every_package(installed_wheel):
    packages = {init.parent.relative_to(ROOT) for init in (ROOT / "resdsl").rglob("__init__.py")}
    missing = sorted(str(package) for package in packages
                     if not (installed_wheel / package / "__init__.py").is_file())
    assert not missing, f"add them to [tool.setuptools] packages: {missing}"
