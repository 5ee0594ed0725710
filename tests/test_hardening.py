"""Hostile and mistyped input: every limit answers with its name and how to raise it, the
torch backend refuses what memory cannot hold before allocating it, outputs are whole or
untouched, inputs are never modified, and results are byte-identical run to run."""

import hashlib
import json
import os
import subprocess
import sys

import pytest
import torch

import resdsl
from resdsl.api import build
from tests.conftest import ARCHS

HEADER = "network t\ninput 3x32x32\nshortcut A\n"


def error_of(cli, *args):
    code, out, err = cli(*args)
    assert code == 1 and out == "" and "Traceback" not in err, err
    return err


def assert_limit(err: str, code: str, limit: str):
    assert f"error[{code}]:" in err and "over the limit of" in err and f"({limit}:" in err, err
    assert f"--limit {limit}=N" in err and f"resdsl.limits({limit}=N)" in err, err


# --- analysis answers at once, by arithmetic ------------------------------------------

def test_huge_widths_and_inputs_are_counted_by_arithmetic(cli, write_arch):
    path = write_arch("network w\ninput 3x1000000x1000000\n"
                      "conv1 : 7x7, 10000000, /2\nhead : avgpool, fc 10\n")
    code, out, _ = cli("flops", path, "--json")  # 10^12 positions: only arithmetic returns
    assert code == 0
    result = json.loads(out)
    conv = 7 * 7 * 3 * 10**7
    assert result["params"] == conv + 2 * 10**7 + 10**8 + 10  # conv, BN affine, fc
    assert result["macs"] == conv * 500_000**2 + 10**8
    err = error_of(cli, "compile", path, "--check")  # torch is another matter
    assert_limit(err, "E608", "memory")
    assert f"{path}:3:9:" in err  # the conv whose output would not fit


def test_a_billion_repeats_is_refused_before_expansion(cli, write_arch):
    path = write_arch(HEADER + "c : 3x3, 16\nd : [3x3, 16; 3x3, 16] x 1000000000\n")
    err = error_of(cli, "flops", path)
    assert f"{path}:5:5:" in err and "expands into 2,000,000,001 layers" in err
    assert_limit(err, "E605", "layers")


def test_layers_without_weights_count_towards_the_limit(cli, write_arch):
    relus = write_arch("network relus\ninput 3x8x8\nshortcut none\nconv1 : 3x3, 4"
                       + ", relu" * 20_000 + "\nhead : avgpool, fc 10\n")
    err = error_of(cli, "check", relus)
    assert "expands into 20,002 layers" in err  # the first ReLU is the conv's own
    assert_limit(err, "E605", "layers")


def test_the_layers_limit_can_be_lowered_and_raised(cli):
    resnet152 = ARCHS / "resnet152.arch"
    assert_limit(error_of(cli, "flops", resnet152, "--limit", "layers=100"), "E605", "layers")
    # 6n + 2 weighted layers, the head's pooling and softmax: 20,008, just over 20,000
    deep = ["--set", "n=3334"]
    err = error_of(cli, "flops", ARCHS / "cifar-resnet.arch", *deep)
    assert "expands into 20,008 layers" in err
    assert_limit(err, "E605", "layers")
    code, out, _ = cli("flops", ARCHS / "cifar-resnet.arch", *deep, "--limit", "layers=20008")
    assert code == 0 and "cifar-resnet[n=3334]" in out
    with resdsl.limits(layers=100), pytest.raises(resdsl.ResdslError) as error:
        resdsl.count(resnet152)
    assert error.value.code == "E605"
    assert resdsl.count(resnet152).params == 60_192_808  # the limit is back to its default


@pytest.mark.parametrize("text, code, limit", [
    (HEADER + "c : " + "[" * 100_000 + "3x3, 16" + "]" * 100_000 + "\n", "E602", "nesting"),
    (HEADER + "c : 3x3, " + "(" * 100_000 + "16" + ")" * 100_000 + "\n", "E602", "nesting"),
    (HEADER + "c : 3x3, " + "+".join(["1"] * 100_000) + "\n", "E603", "expression"),
    (HEADER + "c : 3x3, " + "-" * 100_000 + "16\n", "E603", "expression"),
    (HEADER + "c : 3x3, " + "9" * 10_000 + "\n", "E604", "number"),
    (HEADER + "c : 3x" + "9" * 10_000 + ", 16\n", "E604", "number"),
    ("network t\ninput 3x" + "9" * 5_000 + "x32\nc : 3x3, 16\n", "E604", "number"),
    (HEADER + "param a = 999999\nparam b = a*a*a*a*a\nc : 3x3, b\n", "E604", "number"),
    (HEADER + "c : 3x3, 16, dropout " + "9" * 400 + ".5\n", "E604", "number"),
], ids=["brackets", "parentheses", "long sum", "negations", "long number", "long kernel",
        "long input", "computed", "long float"])
def test_text_that_would_recurse_or_overflow_is_refused_at_its_place(cli, write_arch, text,
                                                                      code, limit):
    path = write_arch(text)
    err = error_of(cli, "check", path)
    assert err.startswith(f"{path}:"), err
    assert_limit(err, code, limit)


def test_raising_the_nesting_limit_lets_deeper_text_through(cli, write_arch):
    path = write_arch(HEADER + "c : 3x3, " + "(" * 40 + "16" + ")" * 40 + "\n")
    assert_limit(error_of(cli, "flops", path), "E602", "nesting")
    assert cli("flops", path, "--limit", "nesting=50")[0] == 0
    deep = write_arch(HEADER + "c : 3x3, " + "+".join(["1"] * 20_000) + "\n", "deep.arch")
    err = error_of(cli, "flops", deep, "--limit", "expression=100000")  # past Python's own
    assert "error[E602]: the text nests deeper than Python's recursion limit" in err


def test_a_100_mb_file_is_refused_without_being_read(cli, tmp_path):
    path = tmp_path / "huge.arch"
    with open(path, "wb") as handle:
        handle.write(HEADER.encode())
        handle.truncate(100 * 2**20)  # sparse: 100 MB without writing them
    err = error_of(cli, "flops", path)
    assert err.startswith(f"{path}: error[E601]: the file has 104,857,600 bytes")
    assert_limit(err, "E601", "file_size")
    err = error_of(cli, "flops", "/dev/zero")  # a device that never ends is never opened
    assert err.startswith("/dev/zero: error[E101]: cannot read file: it is a device, not a "
                          "regular file")


def test_a_long_extends_chain_is_refused(cli, write_arch):
    write_arch(HEADER + "c : 3x3, 16\n", "n0.arch")
    for i in range(1, 40):
        last = write_arch(f'extends "n{i - 1}.arch"\n', f"n{i}.arch")
    err = error_of(cli, "flops", last)
    assert_limit(err, "E606", "extends")
    assert cli("flops", last, "--limit", "extends=50")[0] == 0


def test_a_figure_too_tall_for_graphviz_is_refused_before_dot_runs(cli, tmp_path):
    target = tmp_path / "deep.svg"
    err = error_of(cli, "render", ARCHS / "cifar-resnet.arch", "--set", "n=500", "-o", target)
    assert not target.exists()  # and E607, which dot would never have raised
    assert_limit(err, "E607", "figure_boxes")
    assert "--collapse draws each run" in err
    code, _, _ = cli("render", ARCHS / "cifar-resnet.arch", "--set", "n=500", "--collapse",
                     "-o", target)
    assert code == 0 and target.read_bytes().startswith(b"<?xml")


@pytest.mark.parametrize("args, message", [
    (["--limit", "layer=10"], "unknown limit 'layer'"),
    (["--limit", "layers=-3"], "bad value '-3' for limit 'layers'"),
    (["--limit", "nesting=8GiB"], "bad value '8GiB' for limit 'nesting'"),
])
def test_bad_limits_are_input_errors(cli, args, message):
    err = error_of(cli, "flops", ARCHS / "resnet18.arch", *args)
    assert "error[E609]" in err and message in err


# --- what the long fuzzing campaign found (benchmarks/fuzz_campaign.py) ----------------

def test_a_network_whose_stages_are_empty_is_an_error(cli, write_arch):
    path = write_arch("network t\ninput 3x8x8\nconv1 8x8 :\n")
    err = error_of(cli, "compile", path)
    assert err.startswith(f"{path}:3:1: error[E402]: the network has no layers")


@pytest.mark.parametrize("layers", ["softmax", "relu", "3x3 maxpool", "avgpool"])
def test_a_network_without_weights_compiles_and_checks(cli, write_arch, layers):
    path = write_arch(f"network t\ninput 3x8x8\nhead : {layers}\n")
    code, out, _ = cli("compile", path, "--check")
    assert code == 0 and out.rstrip().endswith("ok")


def test_extends_paths_the_os_cannot_open_are_located_errors(cli, write_arch, tmp_path):
    (tmp_path / "loop1.arch").symlink_to("loop2.arch")
    (tmp_path / "loop2.arch").symlink_to("loop1.arch")
    for parent in ["a\x00b.arch", "loop1.arch"]:
        path = write_arch(f'network t\nextends "{parent}"\n')
        err = error_of(cli, "check", path)
        assert err.startswith(f"{path}:2:1: error[E101]: cannot extend"), err


# --- the torch backend: memory is estimated before anything is allocated ---------------

def test_a_module_beyond_memory_is_refused_before_allocation(write_arch):
    path = write_arch("network giant\ninput 3x32x32\n"
                      "c1 : 3x3, 10000000\nc2 : 3x3, 10000000\nhead : avgpool, fc 10\n")
    with pytest.raises(resdsl.ResdslError) as error:
        resdsl.load(path)  # 9 x 10^14 weights: allocated first, they would raise torch's error
    assert error.value.code == "E608" and error.value.span.line == 4
    assert "needs an estimated 3.2 PiB" in error.value.message


def test_training_is_refused_before_it_starts(cli, write_arch, tmp_path):
    path = write_arch("network giant\ninput 3x32x32\n"
                      "c1 : 3x3, 10000000\nc2 : 3x3, 10000000\nhead : avgpool, fc 10\n")
    err = error_of(cli, "train", path, "--data", "synthetic", "--out", tmp_path / "run")
    assert_limit(err, "E608", "memory")
    assert "optimizer state 3.2 PiB" in err and not (tmp_path / "run").exists()


def test_the_memory_limit_is_the_users_to_set(cli):
    err = error_of(cli, "compile", ARCHS / "resnet18.arch", "--check", "--limit", "memory=50MB")
    assert_limit(err, "E608", "memory")
    assert "over the limit of 47.7 MiB" in err
    with resdsl.limits(memory="10MiB"), pytest.raises(resdsl.ResdslError, match="weights 44"):
        resdsl.load(ARCHS / "resnet18.arch")
    code, out, _ = cli("compile", ARCHS / "cifar-resnet.arch", "--check", "--limit",
                       "memory=1GiB")
    assert code == 0 and "estimated " in out


# --- outputs whole or untouched, inputs never written ----------------------------------

OUTPUTS = [("compile", "net.py", []), ("render", "net.svg", []), ("flops", "net.txt", []),
           ("check", "net.json", ["--json"])]


@pytest.mark.parametrize("command, name, extra", OUTPUTS, ids=[o[0] for o in OUTPUTS])
def test_a_failure_leaves_the_old_output_untouched(cli, write_arch, tmp_path, monkeypatch,
                                                   command, name, extra):
    target = tmp_path / name
    target.write_text("previous contents\n")
    bad = write_arch(HEADER + "c : 3x3\n", "bad.arch")
    assert cli(command, bad, "-o", target, *extra)[0] == 1
    if command == "check":  # its output is the report of that error
        assert json.loads(target.read_text())[0]["code"] == "E405"
        target.write_text("previous contents\n")
    assert target.read_text() == "previous contents\n"

    def disk_full(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)  # fails after the data is written
    err = error_of(cli, command, ARCHS / "cifar-resnet.arch", "-o", target, *extra)
    assert f"error[E701]: cannot write {target}: No space left on device" in err
    assert target.read_text() == "previous contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.arch", name]  # no temporaries


def test_no_command_modifies_its_input(cli, tmp_path):
    def fingerprint():
        return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
                for p in sorted(ARCHS.glob("*.arch"))}

    before = fingerprint()
    for arch in ARCHS.glob("*.arch"):
        assert cli("check", arch)[0] == 0
        assert cli("flops", arch, "--json", "-o", tmp_path / "f.json")[0] == 0
        assert cli("compile", arch, "-o", tmp_path / "f.py")[0] == 0
    assert cli("render", *ARCHS.glob("resnet*.arch"), "--collapse", "-o", tmp_path / "f.dot")[0] == 0
    assert fingerprint() == before


def test_a_closed_pipe_ends_quietly():
    process = subprocess.Popen([sys.executable, "-m", "resdsl", "render",
                                str(ARCHS / "resnet152.arch")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader leaves before resdsl writes (as `| head` does)
    err = process.stderr.read().decode()
    assert process.wait() in (0, 1) and "Traceback" not in err and "internal error" not in err


# --- determinism ------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["flops", "--json", *map(str, sorted(ARCHS.glob("*.arch")))],
                                  ["check", "--json", str(ARCHS / "resnet50.arch"),
                                   str(ARCHS / "vgg19.arch")]], ids=["flops", "check"])
def test_json_is_byte_identical_across_runs_and_hash_seeds(args):
    outputs = {subprocess.run([sys.executable, "-m", "resdsl", *args], check=True,
                              capture_output=True,
                              env=dict(os.environ, PYTHONHASHSEED=seed)).stdout
               for seed in ("0", "1", "2")}
    assert len(outputs) == 1 and json.loads(outputs.pop().splitlines()[0]) is not None


# --- diagnostics as data ----------------------------------------------------------------

def test_check_json_lists_errors_and_warnings_for_every_file(cli, write_arch):
    warned = write_arch(HEADER + "param unused = 3\nblock b(w) = [3x3, w]\nc : 3x3, 16\n",
                        "warned.arch")
    broken = write_arch(HEADER + "c : 3x3, 16\nd : [3x3, 16; 3x3, 16] x zz\n", "broken.arch")
    code, out, err = cli("check", "--json", warned, broken, ARCHS / "resnet18.arch")
    assert code == 1 and err == ""
    found = json.loads(out)
    assert [(d["file"], d["line"], d["column"], d["severity"], d["code"]) for d in found] == [
        (str(warned), 4, 1, "warning", "W102"), (str(warned), 5, 1, "warning", "W101"),
        (str(broken), 5, 26, "error", "E201")]
    assert found[2] == {"file": str(broken), "line": 5, "column": 26,
                        "end": {"line": 5, "column": 28}, "severity": "error", "code": "E201",
                        "message": "unknown name 'zz'", "hint": found[2]["hint"]}
    assert cli("check", "--json", warned)[0] == 0  # warnings alone do not fail a check


def test_check_json_of_a_set_error_names_the_file(cli):
    code, out, _ = cli("check", "--json", ARCHS / "resnet18.arch", "--set", "depth=3")
    assert code == 1
    (found,) = json.loads(out)
    assert found["file"] == str(ARCHS / "resnet18.arch") and found["line"] is None
    assert found["code"] == "E206"


def test_the_shipped_networks_have_no_warnings(cli):
    code, out, _ = cli("check", "--json", *sorted(ARCHS.glob("*.arch")))
    assert code == 0 and json.loads(out) == []


def test_every_code_is_documented_in_the_readme():
    from resdsl.errors import CODES
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Diagnostic codes"):]
    section = section[:section.index("\n#", 1)]
    rows = [line.split("|")[1].strip(" `") for line in section.splitlines()
            if line.startswith("| `")]
    assert rows == list(CODES)


def test_warnings_print_with_the_check_report(cli, write_arch):
    path = write_arch(HEADER + "block b(w) = [3x3, w]\nc : 3x3, 16\n")
    code, out, err = cli("check", path)
    assert code == 0 and "ok:" in out
    assert err.startswith(f"{path}:4:1: warning[W101]: block 'b' is defined but never used")


def test_the_limit_table_lives_in_resdsl_limits_alone(cli):
    from resdsl.safety import DESCRIPTIONS

    code, out, _ = cli("limits")
    assert code == 0 and "1,000,000,000,000" in out and "20,000" in out
    assert all(f"  {name} " in out for name in DESCRIPTIONS)
    for command in ("flops", "check", "compile", "render", "train"):
        _, help_text, _ = cli(command, "--help")
        assert "resdsl limits" in help_text and "  figure_boxes " not in help_text


@pytest.mark.parametrize("value", ["30GiB", "100GiB", "1TB", "1e19"])
def test_a_file_size_limit_past_this_machines_memory_is_refused(cli, value):
    code, _, err = cli("flops", ARCHS / "resnet18.arch", "--limit", f"file_size={value}")
    assert code == 1 and "error[E609]: --limit file_size=" in err, err
    assert "more than this machine can read into memory" in err and "Traceback" not in err


def test_a_raised_file_size_limit_allocates_only_what_the_file_holds(cli):
    code, out, err = cli("flops", ARCHS / "resnet18.arch", "--limit", "file_size=2GiB")
    assert code == 0 and "11,689,512 params" in out, err


@pytest.mark.parametrize("value", ["١٠٠", "１００", "३"])
def test_limit_values_take_ascii_digits_only(cli, value):
    code, _, err = cli("flops", ARCHS / "resnet18.arch", "--limit", f"layers={value}")
    assert code == 1 and f"error[E609]: bad value '{value}' for limit 'layers'" in err


def test_an_extends_chain_of_1100_files_within_a_raised_limit(cli, tmp_path):
    (tmp_path / "f0.arch").write_text(HEADER + "c : 3x3, 4\nhead : avgpool, fc 10\n")
    for i in range(1, 1100):
        (tmp_path / f"f{i}.arch").write_text(f'extends "f{i - 1}.arch"\n')
    code, out, err = cli("check", tmp_path / "f1099.arch", "--limit", "extends=2000")
    assert code == 0 and out.rstrip().splitlines()[-1].startswith("ok: "), err
    assert_limit(error_of(cli, "check", tmp_path / "f1099.arch"), "E606", "extends")
