"""An op of the user's own, declared from Python with the fields of a built-in one and
used in an .arch file without editing resdsl: counts, checks, the torch module, the
generated source, the memory estimate and the figure all take it."""

from __future__ import annotations

import pytest

import resdsl
from resdsl.ops.registry import INPUT, Kept, keeps, per_element
from resdsl.ops.shapes import feature_map, numel

# Mish (Misra, 2019): x * tanh(softplus(x)), one module in torch, an activation that may
# stand where the paper has ReLU.
MISH = resdsl.OpDef(
    "mish", "x * tanh(softplus(x))", other_ops=lambda a, i, out: 4 * numel(out),
    torch=lambda a, x: "nn.Mish()", kept=keeps(INPUT), activation=True)
# AlexNet's local response normalisation, an op with arguments (size required); torch's
# backward keeps its input, the squares padded across channels and two maps of its own.
LRN = resdsl.OpDef(
    "lrn", "local response normalisation across channels",
    args=(resdsl.Arg("size", int), resdsl.Arg("alpha", float, 1e-4),
          resdsl.Arg("beta", float, 0.75)),
    shape=lambda a, inputs: feature_map("lrn", inputs[0]), other_ops=per_element,
    torch=lambda a, x: f"nn.LocalResponseNorm({a['size']}, alpha={a['alpha']!r}, "
                       f"beta={a['beta']!r})",
    kept=keeps(INPUT, Kept("own", lambda a, i, out: (out[0] + a["size"] - 1) * out[1] * out[2]),
               Kept("own"), Kept("own")),
    label=lambda a: f"LRN, {a['size']}", figure_style={"shape": "ellipse"})

NET = """network ext
input 3x32x32
classes 10
shortcut B

conv1 32x32 : 3x3, 16, mish, lrn(size=5, beta=0.5)
conv2 16x16 : [3x3, 32; 3x3, 32] x 2
head        : avgpool, mish(), fc classes
"""


@pytest.fixture(autouse=True)
def user_ops():
    for declared in (MISH, LRN):
        resdsl.register_op(declared)
    yield
    for declared in (MISH, LRN):
        resdsl.unregister_op(declared.name)


def test_counts_and_shapes_take_the_users_ops(write_arch):
    path = write_arch(NET)
    graph = resdsl.build(path)
    assert graph.nodes["conv1.lrn"]["size"] == 5 and graph.nodes["conv1.lrn"]["beta"] == 0.5
    assert graph.nodes["conv1.lrn"]["alpha"] == 1e-4  # the declared default
    assert graph.nodes["conv1.mish"]["shape"] == (16, 32, 32)
    assert graph.nodes["conv1.mish"]["other_ops"] == 4 * 16 * 32 * 32
    plain = resdsl.count(write_arch(NET.replace(", mish, lrn(size=5, beta=0.5)", "")
                                    .replace("mish(), ", ""), "plain.arch"))
    summary = resdsl.count(path)
    assert (summary.params, summary.macs) == (plain.params, plain.macs)
    assert summary.other_ops > plain.other_ops


def test_the_torch_module_and_the_source_build_them(write_arch):
    torch = pytest.importorskip("torch")
    path = write_arch(NET)
    text = resdsl.source(path)
    assert "nn.Mish()" in text and "nn.LocalResponseNorm(5, alpha=0.0001, beta=0.5)" in text
    model = resdsl.load(path)
    assert isinstance(model.conv1.lrn, torch.nn.LocalResponseNorm)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    out.sum().backward()
    from resdsl.backends.pytorch.memory import estimate
    from tests.saved_tensors import saved_for_backward

    kept = estimate(resdsl.build(path), batch=2, training=True).activations
    assert kept == saved_for_backward(model, torch.randn(2, 3, 32, 32))


def test_the_figure_draws_an_op_with_a_label(write_arch):
    dot = resdsl.render(write_arch(NET)).source
    assert "\"LRN, 5\"" in dot and "mish" not in dot  # mish declares no label: not drawn
    (line,) = [line for line in dot.splitlines() if '"LRN, 5"' in line]
    assert "shape=ellipse" in line  # the op's figure_style


@pytest.mark.parametrize("layer, message, hint", [
    ("lrn(sise=5)", "op 'lrn' has no argument 'sise'", "did you mean 'size'?"),
    ("lrn()", "op 'lrn' needs size", "write it as `lrn(size=...)`"),
    ("lrn(size=2.5)", "argument 'size' must be a whole number", None),
    ("lrn(5, size=5)", "argument 'size' is given twice", None),
    ("lrn(size=5) x 2", "'lrn' is an op, not a block: it cannot repeat", None),
])
def test_bad_arguments_are_located_errors(cli, write_arch, layer, message, hint):
    path = write_arch(f"network t\ninput 3x8x8\nc1 : 3x3, 4, {layer}\n")
    code, out, err = cli("check", path)
    assert code == 1 and f"{path}:3:" in err.splitlines()[0] and message in err, err
    assert hint is None or hint in err
    assert "Traceback" not in err


def test_an_unregistered_name_is_still_an_unknown_name(cli, write_arch):
    path = write_arch("network t\ninput 3x8x8\nc1 : 3x3, 4, swish\n")
    code, _, err = cli("check", path)
    assert code == 1 and "error[E201]: unknown name 'swish'" in err


def test_sigmoid_is_a_built_in_added_through_the_registry_alone(write_arch):
    """docs/ARCHITECTURE.md's worked example: one registry entry, no grammar rule (the
    general form reads the bare name), and every pass and backend takes it."""
    torch = pytest.importorskip("torch")
    path = write_arch("network t\ninput 3x8x8\nc1 : 3x3, 4, sigmoid\nhead : avgpool, fc 2\n")
    graph = resdsl.build(path)
    assert graph.nodes["c1.sigmoid"]["other_ops"] == 4 * 8 * 8
    model = resdsl.load(path)
    assert isinstance(model.c1.sigmoid, torch.nn.Sigmoid)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 2)
