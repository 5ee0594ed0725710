"""Property-based tests: random valid networks, which over their draws write every
construct of the language (CONSTRUCTS), hold every invariant against torch, and every
corruption of the shipped networks gets a result or a located error, never another
exception. `benchmarks/fuzz_campaign.py` runs the same checks for 100,000+ cases."""

import random
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import resdsl
from tests.conftest import ARCHS
from tests.fuzz_checks import check_network
from tests.fuzz_networks import ACTS, random_network, write_network
from tests.fuzzing import HOSTILE, check_outcome, hostile_case, mutate

# Derandomized: CI sees the same cases every run; the campaign explores by seed.
CI = settings(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@settings(CI, max_examples=60)
@given(rng=st.randoms(use_true_random=False), seed=st.none() | st.integers(0, 2**32 - 1))
def test_random_valid_networks_hold_every_invariant(rng, seed):
    """Hypothesis's own draws (which it shrinks, and which lean to extremes: every option
    on, the smallest maps), and some seeded ones, as the campaign's (`--first-seed`)."""
    network = random_network(rng if seed is None else random.Random(seed))
    with tempfile.TemporaryDirectory() as folder:
        check_network(write_network(network, Path(folder)))


# each construct of the language, and a pattern that finds it in a drawn network's text
CONSTRUCTS = {f"shortcut {s}": rf"shortcut {s}\n" for s in ("A", "B", "C", "highway", "none")}
CONSTRUCTS.update({f"act {a}": rf"\nact {a}\n" for a in ACTS})
CONSTRUCTS.update({
    "preact on": r"preact on", "projection pooled": r"projection pooled",
    "grouped conv": r"(C|groups)=g", "se 1/16": r"se 1/16\]", "se 0.25": r"se 0\.25\]",
    "dropout in a block": r"; dropout[^;\]]*; \d",
    "ceil maxpool": r"maxpool[^;\n]*pad 0[^;\n]*ceil",
    "ceil avgpool": r"avgpool, [^\n]*ceil", "bias=on": r"bias=on", "bn=off": r"bn=off",
    "exact division": r"\w / \d", "floor division": r"//", "named block": r"\nblock ",
    "inline block": r": \[", "activation after a conv": r"\dx\d, [^;\]\n]*(relu6|silu|gelu)",
    "activation in a block": r"\[[^\]]*\dx\d, [^;\]]*(relu6|silu|gelu|hardswish)[^\]]*;",
    "activation after a block": r"[\])] x [^,\n]+, (/2, |stride 2, )?(relu6|silu|gelu|hardswish)",
    "column implies /2": r"# implies /2", "column implies /1": r"# implies /1",
    "column checked": r"\w \d+x\d+ : [^#\n]*\n", "/1 written": r"/1\b",
    "CxHxW column": r"\w \d+x\d+x\d+ : ", "odd input": r"input \dx(9|13|17|23|33)x",
    "extends": r"extends"})


def test_the_random_networks_draw_every_construct():
    """Over 300 seeds (text only: no torch), each construct is drawn at least 3 times."""
    texts = []
    for seed in range(300):
        network = random_network(random.Random(seed))
        texts.append((network.parent or "") + network.text)
    seen = {name: sum(bool(re.search(pattern, text)) for text in texts)
            for name, pattern in CONSTRUCTS.items()}
    assert {name: n for name, n in seen.items() if n < 3} == {}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A copy of archs/, so that corrupt files can extend their real parents."""
    folder = tmp_path_factory.mktemp("archs")
    for arch in ARCHS.glob("*.arch"):
        shutil.copy(arch, folder)
    return folder


SHIPPED = sorted(ARCHS.glob("*.arch"))


@settings(CI, max_examples=1500)
@given(rng=st.randoms(use_true_random=False), original=st.sampled_from(SHIPPED))
def test_corrupted_networks_get_a_result_or_a_located_error(sandbox, rng, original):
    mutant = sandbox / "mutant.arch"
    mutant.write_bytes(mutate(original.read_bytes(), rng))
    check_outcome(mutant)


@pytest.mark.parametrize("category", HOSTILE)
def test_hostile_cases_hold_their_invariants(sandbox, category):
    """Six seeds of each category of hostile input (the campaign runs thousands)."""
    found = 0
    for seed in range(200):
        rng = random.Random(seed)
        if rng.choice(HOSTILE) != category:
            continue
        outcome = hostile_case(random.Random(seed), sandbox, SHIPPED)
        assert outcome.startswith(f"{category}: ")
        found += 1
        if found == 6:
            break
    assert found == 6


@settings(CI, max_examples=300)
@given(data=st.binary(max_size=2000))
def test_random_bytes_get_a_result_or_a_located_error(sandbox, data):
    mutant = sandbox / "bytes.arch"
    mutant.write_bytes(data)
    check_outcome(mutant)


def test_every_one_character_typo_is_reported_where_it_was_made(tmp_path):
    """Delete each character of resnet34.arch in turn: every typo that breaks the network
    is reported on its own line, or, for a typo in `input`, at the first stage with a
    hint that names the input's line."""
    text = (ARCHS / "resnet34.arch").read_text()
    path = tmp_path / "typo.arch"
    outcomes = {"ok": 0, "error": 0}
    for i in range(len(text)):
        path.write_text(text[:i] + text[i + 1:])
        line = text[:i].count("\n") + 1
        try:
            resdsl.build(path)
            outcomes["ok"] += 1
            continue
        except resdsl.ResdslError as error:
            outcomes["error"] += 1
            where, hint = error.span.line, error.hint or ""
        input_line = text.splitlines()[line - 1].startswith("input")
        assert where == line or (input_line and f"at line {line}" in hint), (i, line)
    assert outcomes["error"] > 150  # the typos that matter are many, and all are caught


def test_random_mutations_are_reproducible_by_seed():
    data = (ARCHS / "resnet50.arch").read_bytes()
    first = [mutate(data, random.Random(seed)) for seed in range(20)]
    assert first == [mutate(data, random.Random(seed)) for seed in range(20)]
    assert sum(mutant != data for mutant in first) >= 18
