"""An activation chosen in place of ReLU, for a whole network (`act silu`), a block
(`bottleneck(64) x 3, gelu`) or a layer (`3x3, 64, hardswish`), built-in or registered:
it replaces the ReLU where it stands, and the counts, the module and its output follow."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import resdsl
from resdsl.ops.shapes import numel
from tests.conftest import ARCHS

CIFAR = ARCHS / "cifar-resnet.arch"
HEADER = "network t\ninput 3x16x16\nclasses 10\nshortcut A\n"


def _ops(graph, prefix: str) -> list[str]:
    return [graph.nodes[n]["op"] for n in graph.nodes if n.startswith(prefix)]


@pytest.mark.parametrize("act, functional", [("silu", F.silu), ("gelu", F.gelu),
                                             ("hardswish", F.hardswish),
                                             ("relu6", F.relu6)])
def test_act_replaces_every_relu_and_nothing_else(act, functional, monkeypatch):
    """The `act` network computes what the ReLU network computes with its ReLUs swapped
    for `act`, on the same weights: every ReLU was replaced, in place, and no other op."""
    relu_net, act_net = resdsl.load(CIFAR).eval(), resdsl.load(CIFAR, act=act).eval()
    act_net.load_state_dict(relu_net.state_dict())
    x = torch.randn(2, 3, 32, 32)
    expected = act_net(x)
    monkeypatch.setattr(F, "relu", lambda tensor, inplace=False: functional(tensor))
    assert torch.allclose(relu_net(x), expected, atol=1e-6)
    assert torch.equal(relu_net(x), expected) or act == "gelu"  # same kernels, same bits
    graph, relu_graph = resdsl.build(CIFAR, act=act), resdsl.build(CIFAR)
    relus = [n for n in relu_graph.nodes if relu_graph.nodes[n]["op"] == "relu"]
    assert len(relus) == 19 and not _ops(graph, "").count("relu")
    assert _ops(graph, "").count(act) == 19
    summary, paper = resdsl.count(CIFAR, act=act), resdsl.count(CIFAR)
    assert (summary.params, summary.macs, summary.other_ops) == \
        (paper.params, paper.macs, paper.other_ops)  # one op an element, as ReLU


def test_an_activation_after_a_layer_is_its_own(write_arch):
    graph = resdsl.build(write_arch(HEADER + "conv1 : 3x3, 8, gelu\n"
                                             "conv2 : 3x3 maxpool, /2, silu\n"
                                             "head  : avgpool, fc 32, hardswish, fc classes\n"))
    assert _ops(graph, "conv1.") == ["conv", "bn", "gelu"]  # not conv, BN, ReLU, GELU
    assert _ops(graph, "conv2.") == ["maxpool", "silu"]  # a pool has none to replace
    assert _ops(graph, "head.") == ["avgpool", "fc", "hardswish", "fc"]
    assert graph.nodes["conv1.gelu"]["other_ops"] == 8 * 16 * 16


def test_a_block_and_its_convs_choose_their_units_activations(write_arch):
    """A block's activation covers its units, the one after the add too; a conv's own
    wins over its block's, which wins over the network's."""
    graph = resdsl.build(write_arch(
        HEADER + "act gelu\nconv1 : 3x3, 8\n"
                 "conv2 : [3x3, 8, hardswish; 3x3, 8] x 2, silu\n"
                 "conv3 : [3x3, 8; 3x3, 8, relu6] x 1\nhead : avgpool, fc classes\n"))
    assert _ops(graph, "conv1.") == ["conv", "bn", "gelu"]
    unit = ["conv", "bn", "hardswish", "conv", "bn", "add", "silu"]
    assert _ops(graph, "conv2.0.") == unit and _ops(graph, "conv2.1.") == unit
    assert _ops(graph, "conv3.0.") == ["conv", "bn", "gelu", "conv", "bn", "add", "relu6"]


def test_pre_activation_units_take_the_activation_before_each_conv(write_arch):
    graph = resdsl.build(write_arch(
        HEADER + "preact on\nact silu\nconv1 : 3x3, 8\nconv2 : [3x3, 8; 3x3, 8] x 1\n"
                 "head : avgpool, fc classes\n"))
    assert _ops(graph, "conv2.0.") == ["bn", "silu", "conv", "bn", "silu", "conv", "add"]
    assert _ops(graph, "conv2.")[-2:] == ["bn", "silu"]  # the BN-act after the last unit


def test_a_registered_activation_replaces_relu(write_arch):
    mish = resdsl.OpDef("mish", "x * tanh(softplus(x))", torch=lambda a, x: "nn.Mish()",
                        other_ops=lambda a, i, out: 4 * numel(out), activation=True)
    resdsl.register_op(mish)
    try:
        path = write_arch(HEADER + "act mish\nconv1 : 3x3, 8\nconv2 : [3x3, 8; 3x3, 8] x 1\n"
                                   "head : avgpool, fc classes\n")
        graph = resdsl.build(path)
        assert _ops(graph, "conv2.0.") == ["conv", "bn", "mish", "conv", "bn", "add", "mish"]
        model = resdsl.load(path).eval()
        assert isinstance(model.conv1.mish, torch.nn.Mish)
        unit = model.conv2[0]
        x = torch.randn(1, 8, 16, 16)
        by_hand = F.mish(unit.bn2(unit.conv2(F.mish(unit.bn1(unit.conv1(x))))) + x)
        assert torch.allclose(unit(x), by_hand)
    finally:
        resdsl.unregister_op("mish")


def test_an_op_that_is_not_an_activation_still_follows_the_layer(write_arch):
    graph = resdsl.build(write_arch(HEADER + "conv1 : 3x3, 8, sigmoid\nhead : avgpool, fc classes\n"))
    assert _ops(graph, "conv1.") == ["conv", "bn", "relu", "sigmoid"]


def test_an_unknown_act_is_a_located_error(cli, write_arch):
    path = write_arch(HEADER + "act swish\nconv1 : 3x3, 8\nhead : avgpool, fc classes\n")
    code, out, err = cli("check", path)
    assert code == 1 and err == (
        f"{path}:5:5: error[E301]: bad value 'swish' for act\n"
        "    act swish\n"
        "        ^~~~~\n"
        "hint: swish is silu here: write `act silu`\n")
    code, out, err = cli("check", path, "--set", "act=sigmoid")
    assert code == 1 and err == (
        "resdsl: error[E301]: --set act=sigmoid: bad value 'sigmoid' for act\n"
        "hint: act is an activation: gelu, hardswish, relu, relu6, silu (or an op "
        "declared with activation=True)\n")


def test_an_activation_alone_in_a_block_says_where_it_goes(cli, write_arch):
    path = write_arch(HEADER + "conv1 : [silu; 3x3, 8; 3x3, 8] x 1\n")
    code, out, err = cli("check", path)
    assert code == 1 and err == (
        f"{path}:5:10: error[E408]: a residual block holds convolutions, dropout and se, "
        "not silu\n"
        "    conv1 : [silu; 3x3, 8; 3x3, 8] x 1\n"
        f"    {' ' * 9}^~~~\n"
        "hint: an activation goes right after its conv, `3x3, 8, silu`, or after the "
        "block, `[...] x 2, silu`, for all its units\n")


def test_torchvisions_names_hold_for_any_activation():
    """An activation has no parameters, so torchvision's ResNet-18 weights load into
    ResNet-18 with SiLU under torchvision's names."""
    torchvision = pytest.importorskip("torchvision")
    model = resdsl.load(ARCHS / "resnet18.arch", naming="torchvision", act="silu",
                        state_dict=torchvision.models.resnet18().state_dict())
    assert isinstance(model.relu, torch.nn.SiLU)
