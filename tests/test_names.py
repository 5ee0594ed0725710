"""Names from the .arch file that reach generated code: one rule for stage names in every
command, and network names that cannot collide with what the generated module defines.
Each reserved word is compiled, imported and run, or refused the same way everywhere."""

import ast

import pytest

torch = pytest.importorskip("torch")

import resdsl  # noqa: E402
from resdsl.backends.pytorch.plan import MODULE_NAMES  # noqa: E402
from resdsl.frontend.names import GENERATED_MEMBERS, MODULE_MEMBERS, RESERVED  # noqa: E402
from tests.conftest import ARCHS  # noqa: E402

NET = """network {network}
input 3x16x16
shortcut {shortcut}
block basic(c) = [3x3, c; 3x3, c]
block bottleneck(c) = [1x1, c; 3x3, c; 1x1, 4c]
{stage} 16x16 : 3x3, 8
conv2_x 16x16 : {block}(8) x 1
conv3_x 8x8 : basic(16) x 1
head 1x1 : avgpool, fc 10
"""


def _arch(write_arch, network="net", stage="conv1", shortcut="B", block="basic"):
    return write_arch(NET.format(network=network, stage=stage, shortcut=shortcut, block=block))


def test_the_reserved_list_covers_the_installed_torch():
    members = {name for name in dir(torch.nn.Module()) if not name.startswith("_")}
    assert members <= MODULE_MEMBERS, sorted(members - MODULE_MEMBERS)


def _generated_names(source: str) -> set[str]:
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, ast.Assign):
            names |= {target.id for target in node.targets}
    return names


@pytest.mark.parametrize("arch, options", [
    ("cifar-resnet.arch", {}), ("resnet50.arch", {}), ("cifar-plain.arch", {}),
    ("cifar-resnet.arch", {"fold_bn": True}), ("vgg19.arch", {})])
def test_module_names_lists_every_name_a_generated_file_defines(arch, options):
    from resdsl.backends.pytorch.runtime import generate

    text, plan = generate(resdsl.build(ARCHS / arch), **options)
    classes = set(plan.unit_classes.values()) | {plan.class_name}
    assert _generated_names(text) - classes <= MODULE_NAMES


@pytest.mark.parametrize("network", sorted(MODULE_NAMES | {"basic-block", "bottleneck",
                                                           "ordered-dict", "zero-pad-shortcut",
                                                           "f", "plain-block3x3", "false",
                                                           "True", "none"}))
def test_a_network_named_like_anything_in_the_generated_file_compiles_and_runs(
        write_arch, tmp_path, cli, network):
    bottleneck = network == "bottleneck"  # Bottleneck is then a class of the file
    path = _arch(write_arch, network=network, shortcut="B" if bottleneck else "A",
                 block="bottleneck" if bottleneck else "basic")
    out = tmp_path / "model.py"
    code, _, err = cli("compile", path, "-o", out)
    assert code == 0, err
    namespace = {}
    exec(compile(out.read_text(), str(out), "exec"), namespace)
    model = resdsl.load(path)
    assert type(model).__name__ in err  # "wrote ...: class NAME"
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    code, out_text, err = cli("compile", path, "--check")
    assert code == 0 and out_text.rstrip().endswith("ok"), err


@pytest.mark.parametrize("stage", sorted(RESERVED) + ["class", "lambda", "_private",
                                                      "conv١", "ｃｏｎｖ1"])
def test_a_reserved_stage_name_is_refused_by_every_command_at_its_line(
        write_arch, cli, stage):
    path = _arch(write_arch, stage=stage)
    for command in ("check", "flops", "compile", "render"):
        code, _, err = cli(command, path)
        assert code == 1, (command, err)
        if stage.isascii():
            assert f"{path}:6:1: error[E703]: the stage name '{stage}'" in err, (command, err)
        else:  # the grammar or the name rule, at the name
            assert f"{path}:6:1: error[E" in err, (command, err)
    with pytest.raises(resdsl.ResdslError):
        resdsl.load(path)


@pytest.mark.parametrize("stage", ["stem", "conv1", "layer0", "Training", "train_x",
                                   "forward_stage", "init"])
def test_names_near_reserved_ones_work(write_arch, stage):
    model = resdsl.load(_arch(write_arch, stage=stage)).eval()
    assert hasattr(model, stage) and model(torch.randn(1, 3, 16, 16)).shape == (1, 10)
    model.train()  # `training` untouched


def test_generated_members_are_what_the_generated_classes_define():
    from resdsl.backends.pytorch.runtime import generate

    text, _ = generate(resdsl.build(ARCHS / "cifar-resnet.arch"), fold_bn=True)
    methods = {node.name for cls in ast.parse(text).body if isinstance(cls, ast.ClassDef)
               for node in cls.body if isinstance(node, ast.FunctionDef)}
    assert methods - {"__init__", "forward"} <= GENERATED_MEMBERS


def test_the_class_docstring_says_why_only_when_the_class_was_renamed(write_arch):
    from resdsl.backends.pytorch.runtime import generate

    def docstring(network):
        text, plan = generate(resdsl.build(_arch(write_arch, network=network, shortcut="A")))
        return plan.class_name, ast.get_docstring(
            next(n for n in ast.parse(text).body if getattr(n, "name", "") == plan.class_name))

    assert docstring("zero-pad-shortcut") == (
        "ZeroPadShortcutNet", "zero-pad-shortcut: 3x16x16 in, 10 out. Named ZeroPadShortcutNet: "
        "ZeroPadShortcut is taken in this file.")
    assert docstring("none")[1].endswith("Named NoneNet: None is a Python keyword.")
    assert docstring("bottleneck-net") == ("BottleneckNet", "bottleneck-net: 3x16x16 in, 10 out.")
