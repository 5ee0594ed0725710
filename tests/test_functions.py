"""Functions in numbers: each against its reference (torchvision's _make_divisible,
Python's math), in the places a number goes, and each misuse a located error."""

from __future__ import annotations

import math
import random

import pytest

import resdsl
from resdsl.frontend.functions import make_divisible

HEAD = "network fn\ninput 3x16x16\nshortcut B\nparam w = 16\n"


def test_make_divisible_is_torchvisions_over_a_sweep():
    utils = pytest.importorskip("torchvision.models._utils")
    rng = random.Random(0)
    for _ in range(2000):
        value, divisor = rng.uniform(1, 2000), rng.choice([1, 4, 8, 16])
        minimum = rng.choice([None, divisor, 2 * divisor])
        assert make_divisible(value, divisor, minimum) == \
            utils._make_divisible(value, divisor, minimum), (value, divisor, minimum)


@pytest.mark.parametrize("expression, value", [
    ("make_divisible(w * 1.4, 8)", 24), ("make_divisible(w * 1.2, 8)", 24),
    ("make_divisible(3, 8)", 8), ("make_divisible(w * 0.25, 8, 2)", 8),
    ("ceil(1.1 * 3)", 4), ("floor(w / 3)", 5), ("round(2.5)", 2), ("round(3.5)", 4),
    ("round(log(64, 2) * 8)", 48), ("max(w, 24, 8)", 24), ("min(w, 24)", 16),
    ("pow(2, 5)", 32), ("round(w * pow(2.0, 0.5))", 23),
    ("round(log(w / 8) / log(2))", 1), ("2 * max(w // 2, 4) + 1", 17),
])
def test_a_function_is_a_number_wherever_one_goes(write_arch, expression, value):
    path = write_arch(HEAD + f"param k = {expression}\nc1 : 3x3, {expression}\n"
                      f"c2 : [3x3, k; 3x3, k] x min(2, 3)\nhead : avgpool, fc k\n")
    graph = resdsl.build(path)
    assert graph.nodes["c1.conv"]["out_channels"] == value
    assert graph.nodes["head.fc"]["out_features"] == value
    assert [n for n in graph.nodes if n.endswith(".add")] == ["c2.0.add", "c2.1.add"]
    assert value == pytest.approx(eval(expression, {  # Python's own value of it
        "w": 16, "make_divisible": make_divisible, "ceil": math.ceil, "floor": math.floor,
        "round": round, "log": math.log, "max": max, "min": min, "pow": pow}))


def test_a_parameter_read_only_inside_a_function_is_used(cli, write_arch):
    path = write_arch(HEAD + "c1 : 3x3, max(w, 8)\nhead : avgpool, fc 2\n")
    code, _, err = cli("check", path)
    assert code == 0 and "W102" not in err


def test_a_block_call_and_an_op_call_are_still_terms(write_arch):
    path = write_arch(HEAD + "block basic(c) = [3x3, c; 3x3, c]\n"
                      "c1 : 3x3, w\nc2 : basic(max(w, 32)) x ceil(1.5), sigmoid()\n"
                      "head : avgpool, fc 2\n")
    graph = resdsl.build(path)
    assert graph.nodes["c2.1.conv2"]["out_channels"] == 32 and "c2.sigmoid" in graph.nodes


@pytest.mark.parametrize("line, code, message", [
    ("c1 : 3x3, 2 * maxx(w, 2)", "E201", "5:15: error[E201]: 'maxx' is no function of numbers"),
    ("c1 : 3x3, 2 * basic(w)", "E201", "error[E201]: 'basic' is no function of numbers"),
    ("c1 : 3x3, max(w)", "E205", "error[E205]: max() takes 2 to 8 arguments, not 1"),
    ("c1 : 3x3, pow(w)", "E205", "error[E205]: pow() takes 2 arguments, not 1"),
    ("c1 : 3x3, min(a=3, 4)", "E205", "error[E205]: min() takes its arguments by position"),
    ("c1 : 3x3, round(log(0))", "E308", "error[E308]: log(0) has no value"),
    ("c1 : 3x3, pow(10, 100000000)", "E308", "error[E308]: pow(10, 1e+08) has no value"),
    ("c1 : 3x3, 16\nc2 : max(w, 2) x 3", "E202", "error[E202]: unknown block 'max'"),
    ("c1 : 3x3, round(w / 3)\nc2 : 3x3, w / 3", "E302", "must be a whole number, not 5.33333"),
])
def test_each_misuse_is_a_located_error(cli, write_arch, line, code, message):
    path = write_arch(HEAD.replace("shortcut B\n", "shortcut none\n") + line
                      + "\nhead : avgpool, fc 2\n")
    status, out, err = cli("check", path)
    assert status == 1 and out == "" and "Traceback" not in err
    assert f"error[{code}]" in err and message in err and err.startswith(f"{path}:")
