"""`resdsl latency`: the roofline arithmetic checked by hand on a one-conv network, the
bound each layer takes, stages that sum to the total, the device table and its errors,
the JSON, and `--measure` on the CPU. No timing thresholds: machines are noisy, so the
tests hold the structure and the signs of measured figures, never their size."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import resdsl
from resdsl.backends.latency import DEVICES, Device, estimate, find_device
from tests.conftest import ROOT

# A 3x3 conv from 3 to 4 channels on 8x8 (no BN), and its ReLU.
TINY = "network tiny\ninput 3x8x8\nbn off\nc 8x8 : 3x3, 4\n"
GFLOP_AND_GB = Device("test", "a test device", 1e9, 2e9, 1e9, "by hand")


def _tiny(write_arch):
    return resdsl.build(str(write_arch(TINY)))


def test_the_roofline_of_one_conv_by_hand(write_arch):
    report = estimate(_tiny(write_arch), GFLOP_AND_GB, batch=2)
    conv, relu = report.layers
    # conv: 2 x 6,912 MACs x 2 images; reads 3x8x8 and writes 4x8x8 per image, and its
    # 108 weights once, at 4 bytes an element
    assert (conv.op, conv.flops, conv.bytes) == ("conv", 2 * 6912 * 2, 4 * (2 * (192 + 256) + 108))
    assert conv.compute_seconds == pytest.approx(27648 / 1e9)
    assert conv.memory_seconds == pytest.approx(4016 / 1e9)
    assert conv.seconds == conv.compute_seconds and conv.bound == "compute"
    # relu: no multiply-adds, so bandwidth alone: 4x8x8 read and written, twice
    assert (relu.op, relu.flops, relu.bytes) == ("relu", 0, 4 * 2 * (256 + 256))
    assert relu.seconds == pytest.approx(4096 / 1e9) and relu.bound == "memory"
    (stage,) = report.stages
    assert stage.seconds == pytest.approx(conv.seconds + relu.seconds)
    assert stage.bound == "compute" and stage.bound_share == pytest.approx(
        conv.seconds / stage.seconds)


def test_a_slow_memory_makes_the_conv_memory_bound(write_arch):
    slow = Device("slow", "slow memory", 1e9, 2e9, 1e6, "by hand")
    conv = estimate(_tiny(write_arch), slow, batch=2).layers[0]
    assert conv.bound == "memory" and conv.seconds == pytest.approx(4016 / 1e6)


def test_half_precision_moves_half_the_bytes_at_the_half_peak(write_arch):
    graph = _tiny(write_arch)
    fp32, bf16 = (estimate(graph, GFLOP_AND_GB, 2, p).layers[0] for p in ("fp32", "bf16"))
    assert bf16.bytes * 2 == fp32.bytes and bf16.flops == fp32.flops
    assert bf16.compute_seconds * 2 == pytest.approx(fp32.compute_seconds)


def test_layers_sum_to_their_stages_and_the_stages_to_the_total():
    report = resdsl.latency("resnet50", device="h100", batch=8)
    assert [s.name for s in report.stages] == ["conv1", "conv2_x", "conv3_x", "conv4_x",
                                               "conv5_x", "head"]
    for stage in report.stages:
        mine = [layer for layer in report.layers if layer.stage == stage.name]
        assert stage.seconds == pytest.approx(sum(layer.seconds for layer in mine))
        assert stage.flops == sum(layer.flops for layer in mine)
    assert report.seconds == pytest.approx(sum(s.seconds for s in report.stages))
    assert sum(s.flops for s in report.stages) == 2 * 8 * resdsl.count("resnet50").macs
    assert report.peak_flops == DEVICES["h100"].fp32 and report.measured_seconds is None


def test_the_softmax_left_to_the_loss_is_not_timed():
    report = resdsl.latency("cifar-resnet", device="a100")
    assert "head.softmax" not in [layer.node for layer in report.layers]
    assert "head.fc" in [layer.node for layer in report.layers]


def test_every_device_has_its_sources_and_peaks():
    for name, device in DEVICES.items():
        assert device.name == name and device.source and device.gpu_marker
        assert 0 < device.fp32 <= device.half and device.bandwidth > 0
        assert find_device(name.upper()) is device
    assert find_device("cpu") is None


def test_an_unknown_device_is_an_error_that_lists_the_known_ones(cli):
    code, out, err = cli("latency", "cifar-resnet", "--device", "h1000")
    assert code == 1 and out == ""
    assert err.startswith("resdsl: error[E704]: unknown device 'h1000'; the known devices are "
                          "cpu, h100, h200, a100")
    assert "did you mean 'h100'?" in err
    with pytest.raises(resdsl.ResdslError) as raised:
        resdsl.latency("cifar-resnet", device="tpu")
    assert raised.value.code == "E704"


def test_json_gives_seconds_bytes_and_flops_per_stage_and_layer(cli):
    code, out, err = cli("latency", "resnet18", "--device", "l4", "--batch", "4", "--amp",
                         "fp16", "--json")
    assert code == 0 and err == ""
    report = json.loads(out)
    assert (report["device"], report["batch"], report["precision"]) == ("l4", 4, "fp16")
    assert report["peak_flops"] == DEVICES["l4"].half and report["bandwidth"] == 300e9
    assert report["measured_seconds"] is None and report["ratio"] is None
    assert [s["name"] for s in report["stages"]][0] == "conv1"
    for stage in report["stages"]:
        assert {"flops", "bytes", "seconds", "bound", "measured_seconds", "ratio"} <= set(stage)
        assert stage["bound"] in ("compute", "memory") and stage["seconds"] > 0
    assert report["seconds"] == pytest.approx(sum(s["seconds"] for s in report["stages"]))
    assert {"node", "op", "stage", "flops", "bytes", "seconds", "bound"} <= set(report["layers"][0])


def test_the_table_states_the_device_and_writes_whole_to_a_file(cli, tmp_path):
    out_file = tmp_path / "latency.txt"
    code, out, err = cli("latency", "resnet50", "--device", "h100", "--layers", "-o", out_file)
    assert code == 0 and out == "" and err == f"wrote {out_file}\n"
    text = out_file.read_text()
    assert text.startswith("resnet50 (")
    assert ("NVIDIA H100 SXM: peak 494 TFLOP/s fp32, 3,350 GB/s (NVIDIA H100 datasheet, SXM; "
            "fp32 convolutions run on TF32 tensor cores") in text
    header = next(line for line in text.splitlines() if line.startswith("stage"))
    assert header.split() == ["stage", "output", "GFLOPs", "MB", "moved", "estimate(µs)",
                              "bound"]
    assert "  conv3_x.0.conv2" in text and text.splitlines()[-1].startswith("total")


def test_a_report_shows_itself_in_a_notebook():
    html = resdsl.latency("cifar-resnet", device="h200")._repr_html_()
    assert html.startswith("<table><caption>cifar-resnet (") and "conv3_x" in html
    assert "NVIDIA H200 SXM" in html


def test_an_estimate_for_a_gpu_never_imports_torch():
    script = ("import sys, resdsl.cli\n"
              "resdsl.cli.main(['latency', 'resnet50', '--device', 'h100', '--json'])\n"
              "assert not [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]\n"
              "print('no torch')\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith("no torch\n")


def test_measure_on_the_cpu_times_every_stage(cli):
    code, out, err = cli("latency", "cifar-resnet", "--batch", "2", "--measure",
                         "--repeats", "2", "--threads", "1", "--json")
    assert code == 0 and err == ""
    report = json.loads(out)
    assert report["device"] == "cpu" and report["device_how"].startswith("this machine, measured")
    assert report["peak_flops"] > 0 and report["bandwidth"] > 0
    assert report["measured_how"].startswith("median of 2 forwards")
    assert [s["name"] for s in report["stages"]] == ["conv1", "conv2_x", "conv3_x", "conv4_x",
                                                     "head"]
    for stage in report["stages"]:
        assert stage["measured_seconds"] > 0 and stage["ratio"] > 0
    assert report["measured_seconds"] > 0 and report["ratio"] > 0


def test_measure_prints_estimate_and_measurement_side_by_side(cli):
    code, out, _ = cli("latency", "cifar-resnet", "--batch", "2", "--measure", "--repeats", "1",
                       "--threads", "1")
    assert code == 0
    header = next(line for line in out.splitlines() if line.startswith("stage"))
    assert header.split()[-3:] == ["bound", header.split()[-2], "ratio"]
    assert header.split()[-2].startswith("measured(")
    total = out.splitlines()[-1].split()
    assert total[0] == "total" and float(total[-1].replace(",", "")) > 0


def test_measure_on_a_gpu_this_machine_lacks_is_refused(cli):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, out, err = cli("latency", "cifar-resnet", "--device", "a100", "--measure")
    assert code == 1 and out == ""
    assert err.startswith("resdsl: error[E704]: --measure on NVIDIA A100 80GB SXM needs that "
                          "GPU, and CUDA is not available here")


def test_the_readme_shows_what_the_estimate_prints(cli):
    """The README's GPU example needs no GPU and no clock, so it is held word for word."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = "$ resdsl latency resnet50 --device h100 --batch 64 --amp bf16\n"
    shown = readme[readme.index(command) + len(command):].split("```", 1)[0]
    code, out, _ = cli(*command.split()[2:])
    assert code == 0 and out.replace(f"{ROOT}/", "") == shown
