"""Typos that some stride can reach: an output-size column that implies a stride of 4,
7 or 14, a column that halves the map without widening the units, strides that skip
pixels and paddings of zeros. Each is said, at its line, never compiled silently."""

from __future__ import annotations

import json

import pytest

import resdsl
from resdsl.errors import ResdslWarning
from tests.conftest import ARCHS

RESNET34 = (ARCHS / "resnet34.arch").read_text()
RESNET50 = (ARCHS / "resnet50.arch").read_text()
CIFAR = (ARCHS / "cifar-resnet.arch").read_text()


def _edit(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


def _error(cli, path):
    code, out, err = cli("flops", path)
    assert code == 1 and out == "" and "Traceback" not in err
    return err


@pytest.mark.parametrize("text, line, column, stride, before, halved", [
    (_edit(RESNET34, "conv4_x   14x14", "conv4_x   28x28"), 15, 12, 4, "conv4_x (line 14) ends at 28x28", "14x14"),
    (_edit(RESNET34, "conv3_x   28x28", "conv3_x   56x56"), 14, 11, 4, "conv3_x (line 13) ends at 56x56", "28x28"),
    (_edit(RESNET34, "conv3_x   28x28", "conv3_x   14x14"), 13, 11, 4, "conv2_x (line 11) ends at 56x56", "28x28"),
    (_edit(RESNET34, "conv5_x    7x7 ", "conv5_x    1x1 "), 15, 12, 14, "conv4_x (line 14) ends at 14x14", "7x7"),
    (_edit(RESNET50, "conv4_x   14x14", "conv4_x   28x28"), 17, 12, 4, "conv4_x (line 16) ends at 28x28", "14x14"),
    (_edit(CIFAR, "conv3_x  16x16", "conv3_x  8x8  "), 14, 10, 4, "conv2_x (line 13) ends at 32x32", "16x16"),
])
def test_a_column_that_implies_a_stride_beyond_2_is_an_error(cli, write_arch, text, line,
                                                             column, stride, before, halved):
    path = write_arch(text)
    err = _error(cli, path)
    assert f"\n{path}:{line}:{column}: error[E504]: the output-size column" in "\n" + err
    assert f"implies stride {stride} for the first unit of" in err
    assert f"hint: {before}, and stride 2 would give {halved}" in err
    assert f"write `/{stride}`" in err


def test_a_stride_the_user_writes_is_taken_as_meant(cli, write_arch):
    path = write_arch(_edit(RESNET34, "conv4_x   14x14  : [3x3, 256; 3x3, 256] x 6",
                            "conv4_x   28x28  : [3x3, 256; 3x3, 256] x 6, /1")
                      .replace("[3x3, 512; 3x3, 512] x 3", "[3x3, 512; 3x3, 512] x 3, /4"))
    code, out, err = cli("flops", path, "--json")
    assert code == 0 and "error" not in err
    assert err.count("warning[") == 1 and "warning[W103]: conv5_x.0.conv1: stride 4" in err
    assert json.loads(out)["stages"][4]["output"] == [512, 7, 7]


def _warnings(cli, path, *args):
    code, out, err = cli("check", "--json", path, *args)
    assert code == 0, err
    return [d for d in json.loads(out) if d["severity"] == "warning"]


def test_a_column_that_halves_the_map_without_widening_is_a_warning(cli, write_arch):
    """cifar-resnet with conv2_x annotated 16x16: each stride is 1 or 2, but conv2_x
    halves the map at 16 filters and conv3_x widens to 32 without halving it."""
    path = write_arch(_edit(CIFAR, "conv2_x  32x32", "conv2_x  16x16"))
    found = _warnings(cli, path)
    assert [(d["code"], d["line"], d["column"]) for d in found] == [("W104", 13, 10),
                                                                     ("W104", 14, 10)]
    assert found[0]["message"].startswith("conv2_x's column halves the map to 16x16 but its "
                                          "units stay 16 wide")
    assert found[1]["message"].startswith("conv3_x's units widen from 16 to 32 but its column "
                                          "keeps the map at 16x16")
    code, out, err = cli("flops", path)  # every command says so, not only check
    assert code == 0 and err.count("warning[W104]") == 2 and "    conv2_x  16x16" in err
    with pytest.warns(ResdslWarning, match="W104"):
        resdsl.count(path)


def test_deleting_the_maxpool_moves_its_stride_into_a_unit_and_says_so(cli, write_arch):
    text = _edit(RESNET34, "conv2_x   56x56  : 3x3 maxpool, /2\n                   [3x3, 64;",
                 "conv2_x   56x56  : [3x3, 64;")
    (warning,) = _warnings(cli, write_arch(text))
    assert warning["code"] == "W104" and warning["line"] == 11
    assert "conv1 (line 10) ends at 112x112" in warning["hint"]


def test_writing_the_stride_silences_the_warning(cli, write_arch):
    text = _edit(CIFAR, "conv2_x  32x32 : [3x3, 16; 3x3, 16] x n",
                 "conv2_x  16x16 : [3x3, 16; 3x3, 16] x n, /2")
    text = _edit(text, "conv3_x  16x16 : [3x3, 32; 3x3, 32] x n",
                 "conv3_x  16x16 : [3x3, 32; 3x3, 32] x n, /1")
    assert _warnings(cli, write_arch(text)) == []


@pytest.mark.parametrize("layer, message", [
    ("3x3, 16, /64", "stride 64 on a 3x3 conv never reads 61 of every 64 rows and columns, "
                     "and is larger than its 32x32 input"),
    ("1x1, 16, /8", "stride 8 on a 1x1 conv never reads 7 of every 8 rows and columns"),
    ("3x3 maxpool, /5", "stride 5 on a 3x3 maxpool never reads 2 of every 5"),
])
def test_a_stride_larger_than_its_kernel_is_a_warning(cli, write_arch, layer, message):
    path = write_arch(f"network n\ninput 3x32x32\n\nc1 : {layer}\nhead : avgpool, fc 10\n")
    (warning,) = _warnings(cli, path)
    assert warning["code"] == "W103" and (warning["line"], warning["column"]) == (4, 6)
    assert message in warning["message"]


def test_the_papers_strides_raise_no_warning(cli):
    """1x1 convs with stride 2 (v1 bottlenecks, projections) are the paper's own."""
    for arch in sorted(ARCHS.glob("*.arch")):
        assert _warnings(cli, arch) == [], arch.name


def test_a_column_implies_the_smallest_stride_that_reaches_it(write_arch):
    """A 3x3 ceil-mode max pool without padding takes 5x5 to 2x2 at stride 2 and at 3;
    the column means 2 (found by the fuzzer: the search once returned 3, E504)."""
    path = write_arch("network n\ninput 1x5x5\n\nc1 : 3x3, 4\n"
                      "c2 2x2 : 3x3 maxpool, pad 0, ceil\nhead : avgpool, fc 2\n")
    graph = resdsl.build(path)
    pool = next(n for n, op in graph.nodes(data="op") if op == "maxpool")
    assert graph.nodes[pool]["stride"] == 2 and graph.nodes[pool]["shape"] == (4, 2, 2)


def test_a_padding_as_large_as_the_kernel_is_an_error(cli, write_arch):
    path = write_arch("network n\ninput 3x32x32\n\nc1 : 3x3, 16, pad 1000000000000\n"
                      "head : avgpool, fc 10\n")
    err = _error(cli, path)
    assert err.startswith(f"{path}:4:6: error[E505]: c1.conv: padding 1000000000000 on a "
                          "3x3 conv gives output rows and columns that see only zeros")


def test_another_input_size_keeps_the_strides_the_columns_imply(cli):
    """The columns are read at the input the file declares; --set input= runs the same
    network on another size: CIFAR ResNet-20 at 224x224 costs 49 times the convs."""
    cifar, at_224 = resdsl.count(ARCHS / "cifar-resnet.arch"), resdsl.count(
        ARCHS / "cifar-resnet.arch", input="3x224x224")
    fc = 64 * 10
    assert at_224.macs - fc == 49 * (cifar.macs - fc)
    assert at_224.stages[3].output == [64, 56, 56] and at_224.params == cifar.params
    code, source, _ = cli("compile", ARCHS / "cifar-resnet.arch", "--set", "input=3x224x224")
    assert code == 0 and "nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)" in source
    small = resdsl.count("resnet50", input="3x160x160")
    assert small.stages[4].output == [2048, 5, 5]


def test_warnings_found_before_an_error_are_reported_with_it(cli, write_arch):
    """ResNet-34 with conv4_x annotated 28x28: the error shows at conv5_x, and the warning
    at conv4_x's own line points at the typo."""
    path = write_arch(_edit(RESNET34, "conv4_x   14x14", "conv4_x   28x28"))
    code, out, _ = cli("check", "--json", path)
    found = json.loads(out)
    assert code == 1 and [(d["code"], d["line"]) for d in found] == [("W104", 14), ("E504", 15)]
    err = _error(cli, path)
    assert err.index("warning[W104]") < err.index("error[E504]")
    with pytest.raises(resdsl.ResdslError) as raised:
        resdsl.build(path)
    assert [w.code for w in raised.value.warnings] == ["W104"]
    assert str(raised.value).startswith(f"{path}:15:12: error[E504]")  # located in scripts too


def test_a_python_warning_names_the_callers_line(write_arch):
    path = write_arch(_edit(CIFAR, "conv2_x  32x32", "conv2_x  16x16"))
    with pytest.warns(ResdslWarning) as caught:
        resdsl.count(path)
    assert {w.filename for w in caught} == {__file__}



RESNEXT50 = (ARCHS / "resnext50-32x4d.arch").read_text()


def _resnext_parents(write_arch) -> None:
    """The files resnext50-32x4d.arch extends, beside the files a test writes."""
    for name in ("resnet50.arch", "resnet50-v1.5.arch"):
        write_arch((ARCHS / name).read_text(), name)


def test_groups_that_do_not_split_are_the_convs_error_not_the_columns(cli, write_arch):
    """A conv's groups fail at every stride: the stride search must not report them as
    a column no stride can reach (issue 33: `error[E502]: no stride turns ...`)."""
    _resnext_parents(write_arch)
    path = write_arch(_edit(RESNEXT50, "w * d // 64 * C; 3x3, w * d // 64 * C, C=C",
                            "w * d // 64 * C; 3x3, 100, C=C"))
    assert _error(cli, path) == (
        f"{path}:10:46: error[E501]: conv2_x.0.conv2: a conv of 32 groups needs input and "
        "output channels that split into them, not 128 and 100\n"
        "    block bottleneck(w) = [1x1, w * d // 64 * C; 3x3, 100, C=C; 1x1, 4w]\n"
        f"    {' ' * 45}^~~\n"
        "hint: with C=32, the width must be a multiple of 32: 96 or 128, not 100; conv2_x.0 "
        f"is the block as conv2_x calls it at {path.parent / 'resnet50.arch'}:14:20\n")



def test_a_parents_layer_that_fails_says_which_file_wrote_it(cli, write_arch):
    parent = write_arch(_edit(RESNET50, "shortcut B\n", "shortcut B\nparam C = 32\n")
                        .replace("[1x1, w; 3x3, w; 1x1, 4w]", "[1x1, w; 3x3, w, C=C; 1x1, 4w]"),
                        "grouped.arch")
    child = write_arch('network mine\nextends "grouped.arch"\nparam C = 24\n')
    assert _error(cli, child) == (
        f"{parent}:11:32: error[E501]: conv2_x.0.conv2: a conv of 24 groups needs input and "
        "output channels that split into them, not 64 and 64\n"
        "    block bottleneck(w) = [1x1, w; 3x3, w, C=C; 1x1, 4w]\n"
        f"    {' ' * 31}^~~\n"
        "hint: with C=24, the width must be a multiple of 24: 48 or 72, not 64; the 64 "
        "channels coming in split into 16 or 32 groups, or widen the layer before to 48 or "
        "72; conv2_x.0 is the block as conv2_x calls it at line 15; this layer is written in "
        f"{parent}, which {child} extends\n")


def test_a_window_larger_than_the_map_is_the_layers_error_not_the_columns(cli, write_arch):
    path = write_arch(_edit(CIFAR, "head      1x1  :", "conv5     8x8  : 11x11, 64, pad 0\n"
                                                     "head      1x1  :"))
    assert _error(cli, path) == (
        f"{path}:16:18: error[E501]: conv5.conv: a 11x11 conv with stride 1 and padding 0 "
        "has no output on a 8x8 input\n"
        "    conv5     8x8  : 11x11, 64, pad 0\n"
        f"    {' ' * 17}^~~~~\n"
        "hint: pad it by at least 2, or use a window of at most 8x8\n")
