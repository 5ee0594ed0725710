"""Every kind of bad input gives one located line, the source line with a caret, a hint
where one helps, exit code 1, and never a traceback."""

import re
import subprocess
import sys

import pytest

HEADER = "network t\ninput 3x32x32\nshortcut A\nconv1 32x32 : 3x3, 16\n"


def assert_located(err: str, path, line: int, column: int, message: str):
    first = err.splitlines()[0]
    assert first.startswith(f"{path}:{line}:{column}: error: "), err
    assert re.search(message, first), err
    caret = err.splitlines()[2]
    assert caret.strip().startswith("^") and caret.index("^") == 4 + column - 1, err
    assert "Traceback" not in err


CASES = [
    # (name, text after HEADER, line, column, message, hint)
    ("syntax", "conv2 16x16 : 3x3, 32 : oops\n", 5, 23, r"unexpected ':'", None),
    ("missing colon", "conv2 16x16 3x3, 32\n", 5, 13, r"unexpected '3x3'; expected ':'",
     r"name HxW : layers"),
    ("unknown op", "conv2 16x16 : 3x3 maxpoool, /2\n", 5, 19, r"unexpected 'maxpoool'",
     r"did you mean 'maxpool'"),
    ("unknown name", "conv2 16x16 : 3x3, 32, relux\n", 5, 24, r"unknown name 'relux'",
     r"did you mean 'relu'"),
    ("unknown block", "conv2 16x16 : basik(32) x 2\n", 5, 15, r"unknown block 'basik'", None),
    ("missing bracket", "conv2 16x16 : [3x3, 32; 3x3, 32 x 2\n", 5, 33, r"unexpected 'x'",
     r"close the block with '\]'"),
    ("unclosed bracket", "conv2 16x16 : [3x3, 32;\n 3x3, 32\n", 5, 15, r"'\[' is never closed",
     r"add the matching '\]'"),
    ("add mismatch", "conv2 : [3x3, 16, pad 0; 3x3, 16] x 2\n", 5, 9,
     r"differ at the add", r"change the map size"),
    ("channels at add", "conv2 : [3x3, 8; 3x3, 8] x 2\n", 5, 9,
     r"cannot go from 16 to 8 channels", None),
    ("no stride fits", "conv2 20x20 : 3x3, 32\n", 5, 1, r"no stride turns 32x32 into 20x20",
     r"stride 2 gives 16x16"),
    ("annotation mismatch", "conv2 8x8 : 3x3, 32, /2\n", 5, 1,
     r"annotated 8x8 but its layers give 16x16", None),
    ("stray number", "conv2 16x16 : 3x3 maxpool, 64\n", 5, 28, r"a channel count must follow a kernel",
     None),
    ("no channels", "conv2 16x16 : 3x3, /2\n", 5, 15, r"this conv has no channel count", None),
    ("stride in block", "conv2 16x16 : [3x3, 32, /2; 3x3, 32] x 2\n", 5, 25,
     r"stride inside a block", r"put it after the block"),
    ("unknown setting", "shortcutt B\n", 5, 1, r"unknown setting 'shortcutt'",
     r"did you mean 'shortcut'"),
    ("bad setting value", "bn maybe\n", 5, 4, r"bad value 'maybe' for bn", r"on or off"),
    ("bad character", "conv2 16x16 : 3x3, 32 @\n", 5, 23, r"unexpected character '@'", None),
    ("zero repeat", "conv2 : [3x3, 16; 3x3, 16] x 0\n", 5, 30, r"repeat count must be at least 1",
     None),
]


@pytest.mark.parametrize("name, text, line, column, message, hint", CASES,
                         ids=[c[0] for c in CASES])
def test_located_errors(cli, write_arch, name, text, line, column, message, hint):
    path = write_arch(HEADER + text)
    code, out, err = cli("check", path)
    assert code == 1 and out == ""
    assert_located(err, path, line, column, message)
    if hint:
        assert re.search(hint, err.splitlines()[-1]) and err.splitlines()[-1].startswith("hint:")


def test_unknown_set_parameter(cli, write_arch):
    path = write_arch("network t\nparam n = 3\ninput 3x32x32\nc : 3x3, 16\n")
    code, out, err = cli("flops", path, "--set", "nn=4")
    assert code == 1 and out == ""
    assert err.startswith("resdsl: error: --set nn: 't' has no parameter or setting 'nn'")
    assert "hint: did you mean 'n'?" in err


def test_bad_set_value(cli):
    from tests.conftest import ARCHS
    code, _, err = cli("flops", ARCHS / "cifar-resnet.arch", "--set", "shortcut=D")
    assert code == 1 and "bad value 'D' for shortcut" in err and "hint: shortcut is A" in err


def test_malformed_set_is_a_usage_error(cli):
    code, _, err = cli("flops", "x.arch", "--set", "n")
    assert code == 2 and "expected NAME=VALUE" in err


def test_missing_file(cli, tmp_path):
    missing = tmp_path / "nope.arch"
    code, out, err = cli("flops", missing)
    assert code == 1 and out == ""
    assert err.strip() == f"{missing}: error: cannot read file: No such file or directory"


def test_not_utf8(cli, write_arch, tmp_path):
    path = tmp_path / "binary.arch"
    path.write_bytes(HEADER.encode() + b"\xff\xfe junk\n")
    code, _, err = cli("check", path)
    assert code == 1 and err.startswith(f"{path}:5:1: error: the file is not UTF-8 text (byte 0xff)")


def test_directory_is_unreadable(cli, tmp_path):
    code, _, err = cli("check", tmp_path)
    assert code == 1 and err.startswith(f"{tmp_path}: error: cannot read file")


def test_extends_cycle(cli, write_arch):
    write_arch('network b\nextends "a.arch"\n', "b.arch")
    a = write_arch('network a\nextends "b.arch"\n', "a.arch")
    code, _, err = cli("check", a)
    assert code == 1 and "extends this file again: a cycle" in err


def test_extends_missing_parent(cli, write_arch):
    path = write_arch('network a\nextends "gone.arch"\n')
    code, _, err = cli("check", path)
    assert code == 1
    assert_located(err, path, 2, 1, r"cannot extend 'gone.arch': cannot read file")


def test_blocks_need_a_shortcut_option(cli, write_arch):
    path = write_arch("network t\ninput 3x32x32\nc : 3x3, 16\nd : [3x3, 16; 3x3, 16] x 2\n")
    code, _, err = cli("check", path)
    assert code == 1
    assert_located(err, path, 4, 5, r"blocks but no shortcut option")


def test_error_in_a_block_definition_points_at_the_definition(cli, write_arch):
    path = write_arch(HEADER + "block b(w) = [3x3, w; 3x3, v]\nconv2 : b(16) x 2\n")
    code, _, err = cli("check", path)
    assert_located(err, path, 5, 28, r"unknown name 'v'")


def test_real_entry_point_exits_1_without_traceback(write_arch):
    path = write_arch(HEADER + "conv2 16x16 : 3x3 maxpoool, /2\n")
    proc = subprocess.run([sys.executable, "-m", "resdsl", "check", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "Traceback" not in proc.stderr and f"{path}:5:19: error:" in proc.stderr
