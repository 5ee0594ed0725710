"""`--set` that would pass in silence: a parameter nothing reads (W105), a name given
twice (W106); and `FILE@name=value`, one file of several under values of its own."""

from __future__ import annotations

import json

import pytest

import resdsl
from resdsl.errors import ResdslWarning
from tests.conftest import ARCHS

CIFAR = ARCHS / "cifar-resnet.arch"


def _derived(write_arch):
    """A ResNeXt that replaces the block reading `d`, so `d` is read by nothing."""
    for name in ("resnet50.arch", "resnet50-v1.5.arch", "resnext50-32x4d.arch"):
        write_arch((ARCHS / name).read_text(), name)
    return write_arch('network mine\nextends "resnext50-32x4d.arch"\n'
                      "block bottleneck(w) = [1x1, 2w; 3x3, 2w, C=C; 1x1, 4w]\n")


def test_a_set_that_nothing_reads_is_a_warning(cli, write_arch):
    path = _derived(write_arch)
    code, out, err = cli("flops", path, "--set", "d=5", "--json")
    parent = path.parent / "resnext50-32x4d.arch"
    assert code == 0 and err == (
        "resdsl: warning[W105]: --set d=5 changes nothing: no stage of 'mine' reads "
        "parameter 'd'\n"
        f"hint: 'd' is declared at {parent}:8:1, but the stages and the blocks they call "
        "never name it\n")
    _, plain, _ = cli("flops", path, "--json")
    assert json.loads(out)["params"] == json.loads(plain)["params"]
    with pytest.warns(ResdslWarning, match=r"W105.*--set d=5 changes nothing"):
        resdsl.count(path, d=5)


def test_a_parameter_read_through_another_or_a_block_is_read(cli, write_arch):
    path = write_arch("network t\ninput 3x32x32\nshortcut A\nparam k = 2\nparam w = 8 * k\n"
                      "block b(c) = [3x3, c; 3x3, c]\n"
                      "conv1 : 3x3, w\nconv2 : b(w) x 1\nhead : avgpool, fc classes\n")
    code, out, err = cli("flops", path, "--set", "k=3")
    assert code == 0 and err == ""


def test_a_set_given_twice_is_a_warning_and_the_last_counts(cli):
    code, out, err = cli("flops", CIFAR, "--set", "n=3", "--set", "n=5", "--json")
    assert code == 0 and err == (
        "resdsl: warning[W106]: --set n is given 2 times (3, 5): the last, n=5, counts\n"
        "hint: give each name once; to compare values side by side, name the network once "
        "per value: `resdsl flops FILE@n=3 FILE@n=5`\n")
    assert json.loads(out)["network"] == "cifar-resnet[n=5]"


def test_one_file_twice_in_one_table_under_its_own_values(cli):
    code, out, err = cli("flops", CIFAR, f"{CIFAR}@n=5", "cifar-resnet@n=18,shortcut=B",
                         "--json")
    assert code == 0 and err == ""
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["network"] for row in rows] == ["cifar-resnet", "cifar-resnet[n=5]",
                                                "cifar-resnet[n=18,shortcut=B]"]
    assert rows[1]["params"] == resdsl.count(CIFAR, n=5).params == 464_154  # ResNet-32
    assert rows[2]["params"] == resdsl.count(CIFAR, n=18, shortcut="B").params


def test_a_files_own_values_win_over_the_commands(cli):
    code, out, err = cli("flops", CIFAR, "cifar-resnet@n=5", "--set", "n=7", "--json")
    assert code == 0
    assert [json.loads(line)["network"] for line in out.splitlines()] == [
        "cifar-resnet[n=7]", "cifar-resnet[n=5]"]


def test_a_variant_renders_and_a_path_with_an_at_sign_is_still_a_path(cli, write_arch):
    code, dot, err = cli("render", CIFAR, "cifar-resnet@n=5")
    # the stem's conv and 2n convs of 16 in conv2_x, for n = 3 and n = 5
    assert code == 0 and dot.count('"3x3 conv, 16"') == (1 + 2 * 3) + (1 + 2 * 5)
    odd = write_arch(CIFAR.read_text(), "net@n=5")
    code, out, err = cli("flops", odd, "--json")
    assert code == 0 and json.loads(out)["network"] == "cifar-resnet"
