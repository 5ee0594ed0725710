"""The `resdsl` command as a user runs it: tables, JSON, check, --help, exit codes."""

import json
import subprocess
import sys

import pytest

import resdsl
from tests.conftest import ARCHS, ROOT

RESNETS = [ARCHS / f"resnet{d}.arch" for d in (18, 34, 50, 101, 152)]


def test_flops_prints_table1_side_by_side(cli):
    code, out, err = cli("flops", *RESNETS)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("MACs: multiply-adds of conv and fc layers, the paper's 'FLOPs'")
    header = next(line for line in lines if line.startswith("stage"))
    assert header.split()[1:] == ["output", "resnet18", "resnet34", "resnet50", "resnet101",
                                  "resnet152"]
    assert "GMACs" in out and "params(M)" in out
    total = next(line for line in lines if line.startswith("total")).split()
    assert total[1:] == ["11.69", "1.81", "21.80", "3.66", "25.56", "3.86", "44.55", "7.57",
                         "60.19", "11.28"]
    assert "60,192,808 params    11,282,415,616 MACs" in out
    conv3 = next(line for line in lines if line.startswith("conv3_x")).split()
    assert conv3[1] == "28x28"


def test_flops_and_all_ops_change_the_labelled_metric(cli):
    _, macs, _ = cli("flops", "--json", RESNETS[0])
    _, flops, _ = cli("flops", "--flops", RESNETS[0])
    assert "FLOPs: 2 x the multiply-adds" in flops and "3,628,146,688 FLOPs" in flops
    _, all_ops, _ = cli("flops", "--all-ops", RESNETS[0])
    other = json.loads(macs)["other_ops"]
    assert other > 0 and f"{1_814_073_344 + other:,} MACs+ops" in all_ops
    assert "plus one op per element of BN, ReLU and add" in all_ops


def test_networks_of_different_sizes_side_by_side(cli):
    code, out, _ = cli("flops", ARCHS / "cifar-resnet.arch", RESNETS[0])
    lines = out.splitlines()
    assert code == 0 and lines[4].split() == ["output", "params(M)", "GMACs", "output",
                                              "params(M)", "GMACs"]
    stages = [line.split()[0] for line in lines[5:12]]
    assert stages == ["conv1", "conv2_x", "conv3_x", "conv4_x", "conv5_x", "head", "total"]
    assert lines[9].split() == ["conv5_x", "-", "-", "-", "7x7", "8.39", "0.41"]
    _, small, _ = cli("flops", ARCHS / "cifar-resnet.arch")
    assert "params(K)  MMACs" in small and small.splitlines()[-4].split()[-2:] == ["269.72", "40.55"]


def test_json_one_object_per_file(cli):
    code, out, _ = cli("flops", "--json", RESNETS[0], ARCHS / "cifar-resnet.arch", "--set", "n=9")
    assert code == 1  # resnet18 has no parameter n: --set applies to every file
    code, out, _ = cli("flops", "--json", RESNETS[0], RESNETS[2])
    first, second = (json.loads(line) for line in out.splitlines())
    assert (first["params"], first["macs"]) == (11_689_512, 1_814_073_344)
    assert second["input"] == [3, 224, 224] and second["output"] == [1000]
    assert [s["name"] for s in second["stages"]] == ["conv1", "conv2_x", "conv3_x", "conv4_x",
                                                    "conv5_x", "head"]
    assert second["stages"][3]["output"] == [1024, 14, 14]
    assert sum(s["macs"] for s in second["stages"]) == second["macs"]
    assert "multiply-adds of conv and fc" in second["convention"]


def test_check_prints_every_shape(cli):
    code, out, _ = cli("check", ARCHS / "resnet34.arch")
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:-1]}
    assert rows["conv1.conv"][2] == "64x112x112" and rows["conv1.conv"][3] == "9,408"
    assert rows["conv3_x.0.shortcut.conv"][2] == "128x28x28"
    assert rows["output"][2] == "1000"
    assert out.splitlines()[-1] == ("ok: 21,797,672 params, 3,663,761,408 MACs "
                                    "(multiply-adds of conv and fc layers)")


def test_dump_ir_goes_to_stderr(cli):
    code, out, err = cli("check", "--dump-ir", ARCHS / "cifar-resnet.arch")
    assert code == 0 and "== after verify" in err and "== after" not in out


def test_help_explains_units_and_exit_codes(cli):
    code, out, _ = cli("flops", "--help")
    words = " ".join(out.split())  # descriptions are wrapped to the terminal
    assert code == 0 and "multiply-adds of conv and fc layers" in words and "exit codes" in out
    code, out, _ = cli("--help")
    assert code == 0 and all(c in out for c in ("flops", "check", "compile", "render", "train"))
    code, out, _ = cli("train", "--help")
    assert code == 0 and "--resume" in out and "torchrun" in out
    code, out, _ = cli("compile", "--help")
    assert code == 0 and "--fold-bn" in out and "--naming" in out
    assert "resdsl compile archs/resnet34.arch -o resnet34.py" in out


def test_console_script_runs_the_readme_command():
    proc = subprocess.run([sys.executable, "-m", "resdsl", "flops", *map(str, RESNETS)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "11,282,415,616 MACs" in proc.stdout


def test_analysis_never_imports_torch():
    script = ("import sys, resdsl.cli\n"
              "resdsl.cli.main(['flops', '--json', 'archs/resnet152.arch'])\n"
              "resdsl.cli.main(['check', 'archs/cifar-resnet.arch'])\n"
              "assert not [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]\n"
              "print('no torch')\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith("no torch\n")


def test_bundled_networks_by_name_from_any_directory(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("flops", "resnet50", "resnet50-v1.5.arch", "--json")
    assert code == 0 and err == ""
    v1, v15 = (json.loads(line) for line in out.splitlines())
    assert (v1["macs"], v15["macs"]) == (3_857_973_248, 4_089_184_256)
    code, out, _ = cli("render", "resnet18")
    assert code == 0 and '"7x7 conv, 64, /2"' in out


def test_a_local_file_wins_over_a_bundled_name(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "resnet50").write_text("network mine\ninput 3x8x8\nc1 : 3x3, 4\n")
    code, out, _ = cli("flops", "resnet50", "--json")
    assert code == 0 and json.loads(out)["network"] == "mine"


def test_an_unknown_name_says_what_there_is(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("flops", "resnet5")
    assert code == 1 and out == ""
    assert err.startswith("resnet5: error[E101]: no file 'resnet5', and no bundled network")
    assert "did you mean 'resnet50'?" in err and "`resdsl list`" in err


def test_list_shows_every_bundled_network_on_one_line(cli):
    code, out, err = cli("list")
    assert code == 0 and err == ""
    rows = {line.split()[0]: line for line in out.splitlines()[4:]}
    assert sorted(rows) == sorted(p.stem for p in ARCHS.glob("*.arch"))
    assert rows["resnet152"].split()[1:5] == ["3x224x224", "152", "60.19", "11.28"]
    assert rows["resnet152"].endswith("ResNet-152 (Table 1): 8 blocks in conv3_x, 36 in conv4_x.")
    assert "M = 10^6, G = 10^9" in out
    # a first sentence that wraps in its file is joined whole, not cut at the line's end
    assert rows["cifar-resnet"].endswith("CIFAR-10 ResNets (sec. 4.2): 6n+2 layers; n=3: "
                                         "ResNet-20 ... 200: ResNet-1202.")
    assert rows["resnext101-32x8d"].endswith("ResNeXt-101 (32x8d): ResNeXt-50's units, 23 of "
                                             "them in conv4_x, 8 channels a group "
                                             "(torchvision's resnext101_32x8d).")
    # a first sentence too long for a line: its opening clause, up to a colon
    assert rows["highway-cifar"].endswith("A CIFAR highway network (Srivastava et al., 2015)")


def test_every_bundled_about_ends_where_a_sentence_or_a_clause_ends():
    from resdsl.bundled import about

    for path in ARCHS.glob("*.arch"):
        comment = " ".join(line.lstrip("#").strip() for line in
                           path.read_text().split("\n") if line.startswith("#"))
        text = about(path)
        assert comment.startswith(text) and comment[len(text):][:1] in ("", " ", ":", ";"), path
        assert text.endswith((".", ")")) or comment[len(text)] in ":;", path


def test_every_subcommand_has_help_with_examples(cli):
    from resdsl.cli import COMMANDS

    code, out, _ = cli("--help")
    assert code == 0 and all(name in out for name in COMMANDS)
    for name, command in COMMANDS.items():
        code, out, _ = cli(name, "--help")
        assert code == 0 and "exit codes" in out and command.examples[0] in out, name


def test_a_bundled_networks_path_from_elsewhere_hints_at_its_name(tmp_path, monkeypatch,
                                                                  write_arch):
    """Outside the checkout `archs/resnet50.arch` is no file; the name is found anywhere."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(resdsl.ResdslError) as raised:
        resdsl.count("archs/resnet50.arch")
    assert str(raised.value) == (
        "archs/resnet50.arch: error[E101]: no file 'archs/resnet50.arch'\n"
        "hint: 'resnet50' is a bundled network, found by its name from any directory: "
        '`resdsl flops resnet50`, resdsl.count("resnet50")')
    child = write_arch('network mine\nextends "resnet50.arch"\n', "mine.arch")
    with pytest.raises(resdsl.ResdslError) as raised:
        resdsl.count(child)
    assert raised.value.hint == (f"'resnet50' ships with resdsl as {ARCHS / 'resnet50.arch'}: "
                                 "copy it (and the files it extends) beside this file, or "
                                 "extend it by that path")
