"""The family's constructs against oracles outside resdsl: squeeze widths against timm's
make_divisible, pooling sizes against torch's pools, the highway merge against its
formula with a gate set by hand, and `bias on` against every conv torch builds."""

from __future__ import annotations

import itertools

import pytest

torch = pytest.importorskip("torch")
timm_layers = pytest.importorskip("timm.layers")
import resdsl  # noqa: E402
from resdsl.ir.units import se_width  # noqa: E402
from resdsl.ops.registry import output_shape  # noqa: E402
from resdsl.ops.shapes import ShapeError  # noqa: E402
from tests.conftest import ARCHS  # noqa: E402


@pytest.mark.parametrize("ratio", [1 / 16, 1 / 8, 0.25])
def test_squeeze_widths_are_timms_over_a_sweep(ratio):
    """timm's SEModule rounds channels * ratio to the nearest multiple of 8, at least 8
    (make_divisible with round_limit 0): 144 channels at 1/16 squeeze to 8, not 16."""
    for channels in range(8, 2049, 4):
        assert se_width(channels, ratio) == timm_layers.SEModule(
            channels, rd_ratio=ratio).fc1.out_channels, (channels, ratio)


def test_a_squeeze_width_in_a_network_is_timms(write_arch):
    path = write_arch("network t\ninput 3x8x8\nshortcut B\n"
                      "conv1 : 3x3, 144\nconv2 : [3x3, 144; 3x3, 144; se 1/16] x 1\n"
                      "head : avgpool, fc classes\n")
    model = resdsl.load(path)
    assert model.conv2[0].se.fc1.out_channels == timm_layers.SEModule(144).fc1.out_channels == 8


@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
@pytest.mark.parametrize("ceil", [False, True])
def test_pool_sizes_are_torchs_over_a_grid(kind, ceil):
    """Every size, window, stride and padding torch accepts: resdsl's size is torch's, and
    where torch has no output resdsl refuses (ceil mode drops a window that would start
    in the padding: 5x5, 2x2/2, pad 1 gives 3)."""
    pool = {"maxpool": torch.nn.MaxPool2d, "avgpool": torch.nn.AvgPool2d}[kind]
    for size, kernel, stride in itertools.product(range(1, 13), range(1, 6), range(1, 4)):
        for padding in range(kernel // 2 + 1):
            attrs = {"op": kind, "kernel": kernel, "stride": stride, "padding": padding,
                     "ceil": ceil, "global": False}
            try:
                expected = pool(kernel, stride, padding, ceil_mode=ceil)(
                    torch.zeros(1, 1, size, size)).shape[-1]
            except RuntimeError:
                expected = None
            try:
                got = output_shape(attrs, [(1, size, size)])[-1]
            except ShapeError:
                got = None
            assert got == expected, (size, kernel, stride, padding)


def test_the_highway_merge_is_its_formula_with_a_gate_set_by_hand():
    """T(x) F(x) + (1 - T(x)) x with T = sigmoid(2) everywhere (gate weights 0, bias 2):
    T and 1 - T swapped would give another sum, as T is not 1/2."""
    model = resdsl.load(ARCHS / "highway-cifar.arch").eval()
    unit = model.conv2_x[1]
    torch.nn.init.zeros_(unit.gate.conv.weight)
    torch.nn.init.constant_(unit.gate.conv.bias, 2.0)
    x = torch.randn(2, 16, 32, 32)
    with torch.no_grad():
        residual = unit.bn2(unit.conv2(torch.relu(unit.bn1(unit.conv1(x)))))
        gate = torch.sigmoid(torch.tensor(2.0))
        expected = torch.relu(gate * residual + (1 - gate) * x)
        torch.testing.assert_close(unit(x), expected)


@pytest.mark.parametrize("arch", ["resnet50.arch", "resnet50-d.arch", "resnet50-v2.arch",
                                  "se-resnet50.arch", "resnext50-32x4d.arch",
                                  "highway-cifar.arch", "cifar-resnet.arch"])
def test_bias_on_reaches_every_conv_projections_included(arch):
    model = resdsl.load(ARCHS / arch, bias="on")
    convs = {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    assert convs and all(conv.bias is not None for conv in convs.values()), \
        [name for name, conv in convs.items() if conv.bias is None]
    plain = resdsl.count(ARCHS / arch)
    assert resdsl.count(ARCHS / arch, bias="on").params - plain.params == sum(
        conv.out_channels for name, conv in convs.items()
        if not ("se." in name or "gate" in name))  # SE's and the gate's have theirs anyway
    if arch not in ("cifar-resnet.arch", "highway-cifar.arch"):  # option A's: no projection
        assert any("shortcut" in name or "downsample" in name for name in convs)
