"""`resdsl flops --sizes` and `resdsl.count(..., sizes=...)`: one network at several input
sizes, each size exactly what `--set input=CxHxW` gives, the output-size columns said to
be unchecked where they are (they are read at the size the file declares), and a size
the network cannot take reported at its layer with the size named."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest

import resdsl
from resdsl.api import read_sizes

SIZES = (160, 224, 320, 448)


def test_json_is_one_object_per_size_each_equal_to_set_input(cli):
    code, out, err = cli("flops", "resnet50", "--sizes", "160,224,320,448", "--json")
    assert code == 0 and err == ""
    objects = [json.loads(line) for line in out.splitlines()]
    assert [o["input"] for o in objects] == [[3, s, s] for s in SIZES]
    for size, got in zip(SIZES, objects):
        code, one, _ = cli("flops", "resnet50", "--set", f"input=3x{size}x{size}", "--json")
        assert code == 0 and got == json.loads(one)
    assert objects[1]["macs"] == 3_857_973_248 and objects[0]["macs"] == 1_969_356_800


def test_the_table_has_a_column_group_per_size_and_says_which_are_unchecked(cli):
    code, out, _ = cli("flops", "resnet50", "--sizes", "160,224,320")
    assert code == 0
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("stage"))
    assert header.split()[1:] == ["resnet50", "@", "160x160", "resnet50", "@", "224x224",
                                  "resnet50", "@", "320x320"]
    conv5 = next(line for line in lines if line.startswith("conv5_x")).split()
    assert conv5 == ["conv5_x", "5x5", "14.96", "0.37", "7x7", "14.96", "0.73", "10x10",
                     "14.96", "1.49"]
    assert "  resnet50 @ 160x160      25,557,032 params     1,969,356,800 MACs" in out
    assert lines[-1] == ("resnet50: output-size columns checked at 224x224 (the size the "
                         "file declares), not at 160x160, 320x320")


def test_hxw_items_other_files_and_settings(cli):
    code, out, _ = cli("flops", "cifar-resnet@n=5", "resnet18", "--sizes", "32x64,64",
                       "--json")
    assert code == 0
    objects = [json.loads(line) for line in out.splitlines()]
    assert [(o["network"], o["input"]) for o in objects] == [
        ("cifar-resnet[input=3x32x64,n=5]", [3, 32, 64]),
        ("cifar-resnet[input=3x64x64,n=5]", [3, 64, 64]),
        ("resnet18[input=3x32x64]", [3, 32, 64]), ("resnet18[input=3x64x64]", [3, 64, 64])]
    code, out, _ = cli("flops", "cifar-resnet@n=5", "--sizes", "32", "--flops")
    assert code == 0 and "cifar-resnet[n=5] @ 32x32" in out and "GFLOPs" not in out
    assert "not at" not in out  # 32x32 is the size the file declares: its columns checked


def test_the_channels_are_those_of_the_input_in_effect(cli):
    code, out, _ = cli("flops", "cifar-resnet", "--set", "input=1x28x28", "--sizes", "32",
                       "--json")
    assert code == 0 and json.loads(out)["input"] == [1, 32, 32]
    code, out, _ = cli("flops", "cifar-resnet@input=1x28x28", "--sizes", "40", "--json")
    assert code == 0 and json.loads(out)["input"] == [1, 40, 40]


def test_a_size_the_network_cannot_take_names_its_layer_and_the_size(cli):
    # Today's --set input= already reports the layer where the map vanishes ...
    code, out, err = cli("flops", "vgg19", "--set", "input=3x8x8")
    assert code == 1 and out == "" and "error[E501]: conv5.maxpool:" in err
    # ... and --sizes reports the same, saying which of the sizes it was.
    code, out, err = cli("flops", "vgg19", "--sizes", "224,8")
    assert code == 1 and out == ""
    assert "vgg19.arch:8:19: error[E501]: at input size 8x8: conv5.maxpool: a 2x2 maxpool" in err
    assert "hint: pad it by at least 1" in err


@pytest.mark.parametrize("bad", ["", "160,,224", "0", "3x3x3", "abc", "16.5", "-4", "٣",
                                 "1" * 12])
def test_an_ill_formed_size_is_a_usage_error(cli, bad):
    code, out, err = cli("flops", "resnet50", "--sizes", bad)
    assert code == 2 and out == ""
    assert "argument --sizes: a size is a positive whole number" in err


def test_count_takes_sizes_and_keeps_its_one_summary_without():
    one = resdsl.count("resnet50")
    assert type(one).__name__ == "NetworkSummary"
    many = resdsl.count("resnet50", sizes=[160, "224x224", (320, 320)])
    assert [s.input for s in many] == [[3, 160, 160], [3, 224, 224], [3, 320, 320]]
    assert many[1] == dataclasses.replace(one, network="resnet50[input=3x224x224]")
    assert many[0] == resdsl.count("resnet50", input="3x160x160")
    assert many.columns_at == [(224, 224)] * 3 and many.names == ["resnet50"] * 3
    assert "resnet50 @ 320x320" in many.table() and "not at 160x160, 320x320" in many.table()
    html = many._repr_html_()
    assert html.count("<table>") == 3 and "input 3x160x160" in html


def test_each_warning_is_issued_once_not_once_per_size(write_arch):
    path = write_arch("network w\ninput 3x32x32\nshortcut A\nblock unused(c) = [3x3, c]\n"
                      "conv1 32x32 : 3x3, 16\nhead 1x1 : avgpool, fc 10\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resdsl.count(path, sizes="32,64,128")
    assert [w.message.diagnostic.code for w in caught] == ["W101"]
    assert caught[0].filename == __file__  # the caller's line, as count() without sizes


def test_read_sizes():
    assert read_sizes("160, 224x192 ,320X320") == [(160, 160), (224, 192), (320, 320)]
    for bad in ("", [], [True], [(1, 2, 3)], [1.5], 224):
        with pytest.raises(ValueError):
            read_sizes(bad)


def test_the_readme_shows_what_sizes_prints(cli):
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("$ resdsl flops resnet50 --sizes 160,224,320\n", 1)[1].split("```")[0]
    shown = [line for line in block.splitlines() if line != "..."]
    code, out, _ = cli("flops", "resnet50", "--sizes", "160,224,320")
    assert code == 0 and len(shown) == 10
    lines = out.splitlines()
    assert all(line in lines for line in shown), [l for l in shown if l not in lines]
    assert "at input size 8x8: conv5.maxpool: a 2x2 maxpool" in readme
