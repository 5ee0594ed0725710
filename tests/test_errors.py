"""Every kind of bad input gives one located line, the source line with a caret, a hint
where one helps, exit code 1, and never a traceback."""

import re
import subprocess
import sys

import pytest

HEADER = "network t\ninput 3x32x32\nshortcut A\nconv1 32x32 : 3x3, 16\n"


def assert_located(err: str, path, line: int, column: int, code: str, message: str):
    first = err.splitlines()[0]
    assert first.startswith(f"{path}:{line}:{column}: error[{code}]: "), err
    assert re.search(message, first), err
    caret = err.splitlines()[2]
    assert caret.strip().startswith("^") and caret.index("^") == 4 + column - 1, err
    assert "Traceback" not in err


CASES = [
    # (name, text after HEADER, line, column, code, message, hint)
    ("syntax", "conv2 16x16 : 3x3, 32 : oops\n", 5, 23, "E103", r"unexpected ':'", None),
    ("missing colon", "conv2 16x16 3x3, 32\n", 5, 13, "E103",
     r"unexpected '3x3'; expected ':'", r"name HxW : layers"),
    ("unknown op", "conv2 16x16 : 3x3 maxpoool, /2\n", 5, 19, "E103", r"unexpected 'maxpoool'",
     r"did you mean 'maxpool'"),
    ("unknown name", "conv2 16x16 : 3x3, 32, relux\n", 5, 24, "E201", r"unknown name 'relux'",
     r"did you mean 'relu'"),
    ("unknown block", "conv2 16x16 : basik(32) x 2\n", 5, 15, "E202", r"unknown block 'basik'",
     None),
    ("missing bracket", "conv2 16x16 : [3x3, 32; 3x3, 32 x 2\n", 5, 33, "E103",
     r"unexpected 'x'", r"close the block with '\]'"),
    ("unclosed bracket", "conv2 16x16 : [3x3, 32;\n 3x3, 32\n", 5, 15, "E104",
     r"'\[' is never closed", r"add the matching '\]'"),
    ("add mismatch", "conv2 : [3x3, 16, pad 0; 3x3, 16] x 2\n", 5, 9, "E503",
     r"differ at the add", r"change the map size"),
    ("channels at add", "conv2 : [3x3, 8; 3x3, 8] x 2\n", 5, 9, "E501",
     r"cannot go from 16 to 8 channels", None),
    ("no stride fits", "conv2 20x20 : 3x3, 32\n", 5, 7, "E502",
     r"no stride turns 32x32 into 20x20", r"stride 2 gives 16x16"),
    ("annotation mismatch", "conv2 8x8 : 3x3, 32, /2\n", 5, 7, "E502",
     r"annotated 8x8 but its layers give 16x16", r"conv1 \(line 4\) ends at 32x32: fix the "
     r"output-size column or the layers, or drop the written stride"),
    ("stray number", "conv2 16x16 : 3x3 maxpool, 64\n", 5, 28, "E405",
     r"a channel count must follow a kernel", None),
    ("no channels", "conv2 16x16 : 3x3, /2\n", 5, 15, "E405", r"this conv has no channel count",
     None),
    ("stride in block", "conv2 16x16 : [3x3, 32, /2; 3x3, 32] x 2\n", 5, 25, "E407",
     r"stride inside a block", r"put it after the block"),
    ("unknown setting", "shortcutt B\n", 5, 1, "E203", r"unknown setting 'shortcutt'",
     r"did you mean 'shortcut'"),
    ("bad setting value", "bn maybe\n", 5, 4, "E301", r"bad value 'maybe' for bn", r"on or off"),
    ("bad character", "conv2 16x16 : 3x3, 32 @\n", 5, 23, "E103", r"unexpected character '@'",
     None),
    ("zero repeat", "conv2 : [3x3, 16; 3x3, 16] x 0\n", 5, 30, "E303",
     r"repeat count must be at least 1", None),
    ("twice", "conv1 : 3x3, 16\n", 5, 1, "E204", r"stage 'conv1' is defined twice",
     r"the first is at line 4"),
    ("block arguments", "block b(w) = [3x3, w]\nconv2 : b(16, 2)\n", 6, 9, "E205",
     r"block 'b' takes 1 argument\(s\), not 2", r"defined at line 5"),
    ("two extends", 'extends "a.arch"\nextends "b.arch"\n', 6, 1, "E208",
     r"may extend only one other file", None),
    ("fractional", "conv2 : 3x3, 16.5\n", 5, 14, "E302", r"must be a whole number, not 16.5",
     None),
    ("dropout", "conv2 : dropout 1.5\n", 5, 9, "E304", r"dropout probability must be in", None),
    ("not square", "conv2 : 3x5, 16\n", 5, 9, "E305", r"a kernel is square", None),
    ("no stage", "bias on\n3x3, 16\n", 6, 1, "E404", r"belong to no stage", None),
    ("bare maxpool", "conv2 : maxpool\n", 5, 9, "E406", r"maxpool needs a window size", None),
    ("stride twice", "conv2 : 3x3, 16, /2, /2\n", 5, 22, "E407", r"already has a stride", None),
    ("block in block", "conv2 : [[3x3, 16] x 2]\n", 5, 10, "E408",
     r"a block uses another block", None),
    ("block uses itself", "block b(w) = [b(w); 3x3, w]\nconv2 : b(16)\n", 5, 15, "E408",
     r"block 'b' uses itself", None),
    ("blocks recurse", "block a(w) = [b(w)]\nblock b(w) = [a(w)]\nconv2 : a(16)\n", 5, 15,
     "E408", r"block 'a' uses block 'b'", None),
    ("pool in block", "conv2 : [3x3, 16; 3x3 maxpool]\n", 5, 19, "E408",
     r"holds convolutions, dropout and se, not maxpool", None),
    # the family's constructs
    ("division by zero", "conv2 : 3x3, 16 / (2 - 2)\n", 5, 20, "E307", r"division by zero", None),
    ("width not whole", "conv2 : 3x3, 16 / 3\n", 5, 14, "E302",
     r"channel count must be a whole number, not 5.33333", None),
    ("groups do not split", "conv2 : 3x3, 24, C=5\n", 5, 9, "E501",
     r"a conv of 5 groups needs input and output channels that split", None),
    ("unknown option", "conv2 : 3x3, 16, D=2\n", 5, 18, "E409", r"unknown layer option 'D'",
     r"options are: C, groups, bias, bn"),
    ("option after a pool", "conv2 : 3x3 maxpool, C=2\n", 5, 22, "E409",
     r"`C=` must follow a conv", None),
    ("switch not on or off", "conv2 : 3x3, 16, bias=yes\n", 5, 23, "E409",
     r"`bias=` is on or off", None),
    ("groups twice", "conv2 : 3x3, 16, C=2, C=4\n", 5, 23, "E409", r"already has its groups", None),
    ("ceil after a conv", "conv2 : 3x3, 16, ceil\n", 5, 18, "E409",
     r"`ceil` must follow a pooling window", r"pad 0, ceil"),
    ("se outside a block", "conv2 : 3x3, 16, se 1/16\n", 5, 18, "E409",
     r"`se` belongs inside a residual block", r"se 1/16"),
    ("se ratio", "conv2 : [3x3, 16; 3x3, 16; se 16]\n", 5, 31, "E409",
     r"reduction ratio in \(0, 1\], not 16", r"se 1/16"),
    ("se not last", "conv2 : [3x3, 16; se 1/4; 3x3, 16]\n", 5, 19, "E409",
     r"`se` comes last in a block", None),
    ("dropout first in a block", "conv2 : [dropout 0.2; 3x3, 16; 3x3, 16]\n", 5, 10, "E408",
     r"dropout in a block goes between two of its convs", None),
    ("preact without blocks", "preact on\n", 5, 1, "E410",
     r"`preact on` orders the layers of residual blocks", None),
    ("pooled projection without projections", "projection pooled\nconv2 : [3x3, 16; 3x3, 16]\n",
     5, 1, "E410", r"shortcut A has none", r"shortcut B"),
]


@pytest.mark.parametrize("name, text, line, column, code, message, hint", CASES,
                         ids=[c[0] for c in CASES])
def test_located_errors(cli, write_arch, name, text, line, column, code, message, hint):
    path = write_arch(HEADER + text)
    exit_code, out, err = cli("check", path)
    assert exit_code == 1 and out == ""
    assert_located(err, path, line, column, code, message)
    if hint:
        assert re.search(hint, err.splitlines()[-1]) and err.splitlines()[-1].startswith("hint:")


def test_unknown_set_parameter(cli, write_arch):
    path = write_arch("network t\nparam n = 3\ninput 3x32x32\nc : 3x3, 16\n")
    code, out, err = cli("flops", path, "--set", "nn=4")
    assert code == 1 and out == ""
    assert err.startswith("resdsl: error[E206]: --set nn: 't' has no parameter or setting 'nn'")
    assert "hint: did you mean 'n'?" in err


def test_bad_set_value(cli):
    from tests.conftest import ARCHS
    code, _, err = cli("flops", ARCHS / "cifar-resnet.arch", "--set", "shortcut=D")
    assert code == 1 and "error[E301]: --set shortcut=D: bad value 'D' for shortcut" in err
    assert "hint: shortcut is A" in err


def test_set_value_that_is_not_a_number(cli):
    from tests.conftest import ARCHS
    code, _, err = cli("flops", ARCHS / "cifar-resnet.arch", "--set", "n=three")
    assert code == 1 and "error[E306]: --set n=three: a parameter's value is a number" in err


def test_malformed_set_is_a_usage_error(cli):
    code, _, err = cli("flops", "x.arch", "--set", "n")
    assert code == 2 and "expected NAME=VALUE" in err


def test_missing_file(cli, tmp_path):
    missing = tmp_path / "nope.arch"
    code, out, err = cli("flops", missing)
    assert code == 1 and out == ""
    assert err.strip() == f"{missing}: error[E101]: cannot read file: No such file or directory"


def test_not_utf8(cli, write_arch, tmp_path):
    path = tmp_path / "binary.arch"
    path.write_bytes(HEADER.encode() + b"\xff\xfe junk\n")
    code, _, err = cli("check", path)
    assert code == 1 and err.startswith(f"{path}:5:1: error[E102]: the file is not UTF-8 text (byte 0xff)")


def test_directory_is_unreadable(cli, tmp_path):
    code, _, err = cli("check", tmp_path)
    assert code == 1 and err.startswith(f"{tmp_path}: error[E101]: cannot read file")


def test_extends_cycle(cli, write_arch):
    write_arch('network b\nextends "a.arch"\n', "b.arch")
    a = write_arch('network a\nextends "b.arch"\n', "a.arch")
    code, _, err = cli("check", a)
    assert code == 1 and "error[E207]:" in err and "extends this file again: a cycle" in err


def test_extends_missing_parent(cli, write_arch):
    path = write_arch('network a\nextends "gone.arch"\n')
    code, _, err = cli("check", path)
    assert code == 1
    assert_located(err, path, 2, 1, "E101", r"cannot extend 'gone.arch': cannot read file")


def test_blocks_need_a_shortcut_option(cli, write_arch):
    path = write_arch("network t\ninput 3x32x32\nc : 3x3, 16\nd : [3x3, 16; 3x3, 16] x 2\n")
    code, _, err = cli("check", path)
    assert code == 1
    assert_located(err, path, 4, 5, "E403", r"blocks but no shortcut option")


def test_error_in_a_block_definition_points_at_the_definition(cli, write_arch):
    path = write_arch(HEADER + "block b(w) = [3x3, w; 3x3, v]\nconv2 : b(16) x 2\n")
    code, _, err = cli("check", path)
    assert_located(err, path, 5, 28, "E201", r"unknown name 'v'")


def test_real_entry_point_exits_1_without_traceback(write_arch):
    path = write_arch(HEADER + "conv2 16x16 : 3x3 maxpoool, /2\n")
    proc = subprocess.run([sys.executable, "-m", "resdsl", "check", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "Traceback" not in proc.stderr and f"{path}:5:19: error[E103]:" in proc.stderr


@pytest.mark.parametrize("text, code, message", [
    ("network t\nshortcut A\nc : 3x3, 16\n", "E401", "the network has no input size"),
    ("network t\ninput 3x32x32\n", "E402", "the network has no stages"),
])
def test_whole_network_errors_point_at_its_network_line(cli, write_arch, text, code, message):
    path = write_arch(text)
    exit_code, _, err = cli("check", path)
    assert exit_code == 1
    assert_located(err, path, 1, 1, code, message)


def test_the_readmes_examples_are_what_resdsl_prints(cli, write_arch):
    """The E103 and E504 examples of the README, as resdsl prints them today."""
    from tests.conftest import ARCHS, ROOT

    readme = (ROOT / "README.md").read_text()
    path = write_arch(HEADER + "conv2 16x16 : 3x3 maxpoool, /2\n")
    _, _, err = cli("check", path)
    assert err.replace(str(path), "net.arch") in readme
    path = write_arch((ARCHS / "resnet34.arch").read_text().replace("conv4_x   14x14",
                                                                     "conv4_x   28x28"))
    _, _, err = cli("flops", path)
    e504 = err[err.index(f"{path}:15:12"):].replace(str(path), "net.arch")
    assert "\n".join("  " + line for line in e504.splitlines()) in readme
