"""resdsl diff: part by part, totals equal to two separate counts, the changes named as
the figures label them, and a figure with the changed parts outlined."""

from __future__ import annotations

import json
import re

import resdsl
from resdsl.backends.pytorch.memory import estimate


def test_the_totals_are_two_flops_runs_and_two_memory_runs(cli):
    code, out, _ = cli("diff", "resnet50", "resnet152", "--json")
    total = json.loads(out)["total"]
    for side, name in (("a", "resnet50"), ("b", "resnet152")):
        counted = resdsl.count(name)
        assert (total["params"][side], total["macs"][side]) == (counted.params, counted.macs)
        assert total["memory"][side] == estimate(resdsl.build(name), 1, training=True).activations
    parts = json.loads(out)["parts"]
    for key in ("params", "macs", "memory"):
        assert sum(part["delta"][key] for part in parts) == total[key]["delta"]


def test_resnet_d_is_its_stem_and_its_pooled_projections(cli):
    code, out, _ = cli("diff", "resnet50", "resnet50-d", "--changed")
    assert code == 0
    assert "settings: stride_on 1x1 → 3x3, projection conv → pooled" in out
    stem = re.search(r"^conv1 \*.*\n    (.*)\n    (.*)$", out, re.M)
    assert stem and "9,536      28,768  +19,232" in stem.group(0)
    assert stem.group(1) == "7x7 conv, 64, /2 → 3x3 conv, 32, /2"
    assert stem.group(2) == "+ 3x3 conv, 32; bn; relu; 3x3 conv, 64; bn; relu"
    assert ("1x1 conv, 512, /2 (shortcut) → avg pool, /2 (shortcut); 1x1 conv, 512 (shortcut)"
            in out)
    assert out.rstrip().endswith("4 of 20 parts changed")  # the stem and 3 first units


def test_a_network_against_itself_changes_nothing(cli):
    code, out, _ = cli("diff", "resnet34", "resnet34")
    assert code == 0 and out.rstrip().endswith("0 of 20 parts changed") and " * " not in out


def test_units_one_network_adds_are_said_to_be_only_in_it(cli):
    code, out, _ = cli("diff", "cifar-resnet", "cifar-resnet@n=4", "--changed")
    assert code == 0 and out.count("only in cifar-resnet[n=4]") == 3  # one more unit a stage
    assert re.search(r"^conv2_x\.3 \* +- +16x32x32", out, re.M)


def test_the_figure_outlines_the_changed_parts(cli, tmp_path):
    figure = tmp_path / "diff.svg"
    code, _, err = cli("diff", "resnet18", "resnet18-d", "-o", figure)
    svg = figure.read_text()
    assert code == 0 and f"wrote {figure}" in err and svg.lstrip().startswith("<?xml")
    # each network: the stem's convs and the two convs of each stage's first unit that
    # the shortcut spans (resnet18: 1 + 2 * 3, resnet18-d: 3 + 2 * 3)
    assert svg.count('stroke="#d62728"') == 7 + 9


def test_two_files_that_do_not_parse_are_each_reported(cli, write_arch):
    one, two = write_arch("network a\ninput 3x8x8\nc : 3x3\n", "one.arch"), \
        write_arch("network b\ninput 3x8x8\nc : [3x3, 4\n", "two.arch")
    code, out, err = cli("diff", one, two)
    assert code == 1 and out == "" and "Traceback" not in err
    assert f"{one}:3:" in err and f"{two}:3:" in err


def test_the_python_api_gives_the_same_diff():
    result = resdsl.diff("resnet50", "resnet50-d")
    assert result.to_dict()["total"]["params"]["delta"] == 19_232
    assert "<table>" in result._repr_html_()
