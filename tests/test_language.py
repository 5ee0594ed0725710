"""What the .arch language expresses, checked through the counts and graphs it yields."""

import pytest

from resdsl import ResdslError, build, count
from tests.conftest import ARCHS

BASIC = """\
network t
input 3x32x32
classes 10
shortcut A
conv1    32x32 : 3x3, 16
conv2_x  32x32 : [3x3, 16; 3x3, 16] x 2
conv3_x  16x16 : [3x3, 32; 3x3, 32] x 2
head      1x1  : avgpool, fc classes, softmax
"""


def ops(graph, op):
    return sorted(n for n, o in graph.nodes(data="op") if o == op)


def test_output_size_column_implies_the_stride_of_the_first_unit(write_arch):
    graph = build(write_arch(BASIC))
    assert graph.nodes["conv3_x.0.conv1"]["stride"] == 2
    assert graph.nodes["conv3_x.1.conv1"]["stride"] == 1
    assert graph.nodes["conv3_x.0.relu2"]["shape"] == (32, 16, 16)


def test_written_strides_in_every_form_agree(write_arch):
    implied = count(write_arch(BASIC, "a.arch"))
    slash = count(write_arch(BASIC.replace("x 2\nhead", "x 2, /2\nhead").replace(
        "conv3_x  16x16", "conv3_x"), "b.arch"))
    word = count(write_arch(BASIC.replace("x 2\nhead", "x 2, stride 2\nhead").replace(
        "conv3_x  16x16", "conv3_x"), "c.arch"))
    assert implied.macs == slash.macs == word.macs


def test_paper_rows_layout_comments_and_unicode(write_arch):
    text = BASIC.replace("[3x3, 32; 3x3, 32] x 2", "[3×3, 32;   # first row\n"
                         "                   3x3, 32] × 2   # second row")
    assert count(write_arch(text)).params == count(write_arch(BASIC, "plain.arch")).params


def test_named_blocks_with_scaled_widths_and_parameters(write_arch):
    text = ("network t\nparam n = 2\ninput 3x64x64\nshortcut B\n"
            "block bottleneck(w) = [1x1, w; 3x3, w; 1x1, 4w]\n"
            "c1 : 3x3, 64\nc2 : bottleneck(16) x n\nc3 32x32 : bottleneck(2*16) x n + 1\n")
    graph = build(write_arch(text))
    assert graph.nodes["c2.1.conv3"]["out_channels"] == 64
    assert graph.nodes["c3.0.conv3"]["out_channels"] == 128
    assert len([n for n in graph if n.startswith("c3.") and n.endswith(".add")]) == 3
    assert build(write_arch(text), n=4).nodes["c3.4.add"]["op"] == "add"


def test_set_overrides_parameters_and_settings():
    assert count(ARCHS / "cifar-resnet.arch", n=9).network == "cifar-resnet[n=9]"
    b = build(ARCHS / "cifar-resnet.arch", shortcut="B")
    assert ops(b, "pad") == [] and len(ops(b, "conv")) == 19 + 2
    wide = count(ARCHS / "cifar-resnet.arch", input="3x64x64")  # no annotation: free size
    assert wide.input == [3, 64, 64]


def test_shortcut_options_a_b_c_and_none():
    """ResNet-34 has 16 shortcuts; 3 change shape (Table 1: conv3_1, conv4_1, conv5_1)."""
    resnet34 = ARCHS / "resnet34.arch"
    a, b, c = (build(resnet34, shortcut=o) for o in "ABC")
    assert len(ops(a, "add")) == len(ops(b, "add")) == len(ops(c, "add")) == 16
    assert len(ops(a, "pad")) == 3 and not [n for n in a if ".shortcut.conv" in n]
    assert [n for n in b if n.endswith(".shortcut.conv")] == [
        "conv3_x.0.shortcut.conv", "conv4_x.0.shortcut.conv", "conv5_x.0.shortcut.conv"]
    assert len([n for n in c if n.endswith(".shortcut.conv")]) == 16
    params = [count(resnet34, shortcut=o).params for o in ("none", "A", "B", "C")]
    assert params[0] == params[1] < params[2] < params[3]  # Table 3: A adds none, C most
    assert ops(build(ARCHS / "plain34.arch"), "add") == []


def test_option_a_subsamples_and_zero_pads(write_arch):
    graph = build(write_arch(BASIC))
    pad = graph.nodes["conv3_x.0.shortcut.pad"]
    assert (pad["stride"], pad["out_channels"], pad["shape"], pad["params"]) == (2, 32, (32, 16, 16), 0)


def test_bottleneck_stride_on_1x1_or_3x3():
    v1, v15 = build(ARCHS / "resnet50.arch"), build(ARCHS / "resnet50-v1.5.arch")
    assert [v1.nodes[f"conv3_x.0.conv{i}"]["stride"] for i in (1, 2, 3)] == [2, 1, 1]
    assert [v15.nodes[f"conv3_x.0.conv{i}"]["stride"] for i in (1, 2, 3)] == [1, 2, 1]
    assert v1.nodes["conv3_x.0.shortcut.conv"]["stride"] == 2


def test_extends_replaces_stages_in_place_and_keeps_the_rest():
    graph = build(ARCHS / "resnet152.arch")
    stages = [s.name for s in graph.graph["stages"]]  # the typed front end's Stage objects
    assert stages == ["conv1", "conv2_x", "conv3_x", "conv4_x", "conv5_x", "head"]
    units = {s: len([n for n in graph if n.startswith(s + ".") and n.endswith(".conv3")])
             for s in stages[1:5]}
    assert units == {"conv2_x": 3, "conv3_x": 8, "conv4_x": 36, "conv5_x": 3}


def test_vgg_has_bias_no_bn_and_relu_between_fc_layers():
    graph = build(ARCHS / "vgg16.arch")
    assert ops(graph, "bn") == []
    assert all(graph.nodes[n]["bias"] for n in ops(graph, "conv"))
    chain = [graph.nodes[n]["op"] for n in graph if n.startswith("head.")]
    assert chain == ["fc", "relu", "dropout", "fc", "relu", "dropout", "fc", "softmax"]


def test_a_file_is_data_never_code(write_arch, tmp_path):
    """Names are looked up, never evaluated: Python in a file is a syntax error."""
    marker = tmp_path / "pwned"
    text = BASIC.replace("fc classes", f"fc __import__('os').system('touch {marker}')")
    with pytest.raises(ResdslError):
        build(write_arch(text))
    assert not marker.exists()


def test_spans_point_into_the_file_that_wrote_the_layer():
    graph = build(ARCHS / "resnet18.arch")
    conv = graph.nodes["conv3_x.0.conv1"]["span"]
    assert conv.file.endswith("resnet18.arch") and conv.line == 7
    stem = graph.nodes["conv1.conv"]["span"]
    assert stem.file.endswith("resnet34.arch") and stem.line == 10


@pytest.mark.parametrize("expression, width", [("64 * 4 // 64 * 32", 128), ("256 / 2", 128),
                                               ("(30 - 2) / 7 * 4", 16), ("7 // 2", 3)])
def test_division_exact_and_floor(write_arch, expression, width):
    graph = build(write_arch(f"network t\ninput 3x8x8\nc : 3x3, {expression}\n"))
    assert graph.nodes["c.conv"]["out_channels"] == width


def test_grouped_conv_counts_its_groups(write_arch):
    graph = build(write_arch("network t\ninput 32x8x8\nc : 3x3, 64, C=8, bias=on\n"))
    conv = graph.nodes["c.conv"]
    assert (conv["groups"], conv["bias"]) == (8, True)
    assert conv["params"] == 64 * (32 // 8) * 9 + 64 and conv["macs"] == 64 * 64 * 4 * 9


@pytest.mark.parametrize("channels, squeeze", [(256, 16), (2048, 128), (64, 8), (100, 8), (200, 16)])
def test_se_squeeze_width_is_timms_rounding(channels, squeeze):
    """make_divisible(C / 16, 8) with round_limit 0: nearest multiple of 8, at least 8."""
    from resdsl.ir.units import se_width
    assert se_width(channels, 1 / 16) == squeeze


def test_preact_orders_bn_relu_before_each_conv_and_nothing_after_the_add():
    graph = build(ARCHS / "resnet50-v2.arch")
    unit = [n for n in graph if n.startswith("conv3_x.1.")]
    assert [graph.nodes[n]["member"] for n in unit] == [
        "bn1", "relu1", "conv1", "bn2", "relu2", "conv2", "bn3", "relu3", "conv3", "add"]
    assert list(graph.predecessors("conv5_x.bn")) == ["conv5_x.2.add"]  # one BN-ReLU at the end
    assert list(graph.successors("conv5_x.bn")) == ["conv5_x.relu"]
    stem = [n for n in graph if n.startswith("conv1.")]
    assert stem == ["conv1.conv"]  # the first unit's BN-ReLU acts on it
    projection = [n for n in graph if n.startswith("conv3_x.0.shortcut.")]
    assert projection == ["conv3_x.0.shortcut.conv"]  # no BN
    assert list(graph.predecessors(projection[0])) == ["conv3_x.0.relu1"]


def test_pooled_projection_pools_only_where_it_strides():
    graph = build(ARCHS / "resnet50-d.arch")
    assert not [n for n in graph if n.startswith("conv2_x.0.shortcut.pool")]
    pool = graph.nodes["conv3_x.0.shortcut.pool"]
    assert (pool["kernel"], pool["stride"], pool["ceil"]) == (2, 2, True)
    assert graph.nodes["conv3_x.0.shortcut.conv"]["stride"] == 1


def test_highway_gates_every_unit(write_arch):
    graph = build(write_arch(BASIC.replace("shortcut A", "shortcut highway")))
    merges = ops(graph, "highway")
    assert len(merges) == 4 and not ops(graph, "add")
    gate = graph.nodes["conv3_x.0.gate.conv"]
    assert (gate["stride"], gate["bias"], gate["out_channels"]) == (2, True, 32)
