"""Memory per layer, against torch: the activations a training step keeps equal, to the
byte, what torch's saved-tensor hooks see, for every bundled network at batch 2 (float32,
the ImageNet ones at 112x112; and bf16 autocast on a CPU); the totals, the largest batch
that fits, and the command."""

from __future__ import annotations

import json

import pytest
import torch

import resdsl
from resdsl.backends.pytorch.memory import estimate, largest_batch
from resdsl.bundled import bundled_archs
from tests.saved_tensors import saved_for_backward

BUNDLED = bundled_archs()


def _half_size(name: str) -> dict:
    """An ImageNet network at 112x112 (the same layers and storages at a quarter of the
    cost: benchmarks/bench_design.py checks them at 224x224 too); the others as they are."""
    shape = resdsl.build(name).nodes["input"]["shape"]
    return {"input": "3x112x112"} if shape == (3, 224, 224) else {}


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_what_a_training_step_keeps_is_what_torch_saves(name):
    graph = resdsl.build(name, **_half_size(name))
    model = resdsl.load(name, **_half_size(name))
    x = torch.randn(2, *graph.nodes["input"]["shape"])
    need = estimate(graph, 2, training=True)
    assert need.activations == saved_for_backward(model, x)
    tensors = [*model.parameters(), *model.buffers()]
    assert need.weights == sum(t.numel() * t.element_size() for t in tensors)


@pytest.mark.parametrize("name", ["cifar-resnet", "resnet18", "se-resnet50", "highway-cifar",
                                  "preact-resnet"])
def test_under_bf16_autocast_the_half_maps_and_weight_copies_are_counted(name):
    graph = resdsl.build(name)
    x = torch.randn(2, *graph.nodes["input"]["shape"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        saved = saved_for_backward(resdsl.load(name), x)
    half = estimate(graph, 2, training=True, amp="bf16").activations
    assert half == saved  # at batch 2 the weights' half copies outweigh the halved maps


def test_the_totals_add_up_and_the_optimizers_state_is_copies_of_the_weights():
    graph = resdsl.build("resnet50")
    params = 25_557_032
    sgd = estimate(graph, 8, training=True, optimizer="sgd")
    adamw = estimate(graph, 8, training=True, optimizer="adamw")
    assert sgd.gradients == sgd.optimizer == 4 * params and adamw.optimizer == 8 * params
    assert sgd.activations == sum(layer.kept for layer in sgd.layers)
    assert sgd.total == sgd.weights + 2 * 4 * params + sgd.activations
    per_image = [estimate(graph, n, training=True).activations for n in (8, 16, 24)]
    assert per_image[2] - per_image[1] == per_image[1] - per_image[0]  # and BN's statistics


def test_inference_is_the_most_alive_at_once(write_arch):
    """A chain of convs, each 4x8x8 at batch 1: while a conv runs its input and output
    are alive (256 bytes each), and no more: BN makes a map of its own, ReLU works in it."""
    path = write_arch("network chain\ninput 4x8x8\nshortcut none\n"
                      "c1 : 3x3, 4\nc2 : 3x3, 4\nc3 : 3x3, 4\nhead : avgpool, fc 2\n")
    graph = resdsl.build(path)
    need = estimate(graph, 1)
    live = {layer.name: layer.live for layer in need.layers}
    assert live["c2.conv"] == live["c2.bn"] == 2 * 4 * 64 * 4 and live["c2.relu"] == 4 * 64 * 4
    assert need.activations == max(live.values()) == 2 * 4 * 64 * 4
    assert need.gradients == need.optimizer == 0


def test_the_largest_batch_that_fits_is_the_last_within_the_budget():
    graph = resdsl.build("resnet50")
    budget = 24 * 2**30
    batch = largest_batch(graph, budget, training=True, optimizer="sgd")
    assert estimate(graph, batch, training=True, optimizer="sgd").total <= budget
    assert estimate(graph, batch + 1, training=True, optimizer="sgd").total > budget


def test_the_memory_command_prints_layers_and_totals(cli):
    code, out, _ = cli("memory", "resnet50", "--batch", "32", "--fit", "24GiB")
    assert code == 0
    assert "training with SGD, batch 32, float32" in out
    assert "conv1.bn                      bn      64x112x112       98.00" in out
    assert "optimizer      97.49 MiB  SGD's momentum" in out
    assert "the largest batch that fits in 24.0 GiB: 311 " in out


def test_the_memory_json_is_bytes(cli):
    code, out, _ = cli("memory", "resnet18", "--eval", "--batch", "4", "--json", "--amp", "bf16")
    result = json.loads(out)
    assert code == 0 and result["mode"] == "eval" and result["gradients"] == 0
    assert result["activations"] == max(layer["bytes"] for layer in result["layers"])
    assert result["total"] == result["weights"] + result["activations"]
    assert result["layers"][1] == {"name": "conv1.conv", "op": "conv", "stage": "conv1",
                                   "bytes": 4 * (3 * 224 * 224 * 4 + 64 * 112 * 112 * 2)}


@pytest.mark.parametrize("fit, message", [
    ("10MB", "resnet18 does not fit in 9.5 MiB: the weights alone need 44.6 MiB"),
    ("46MiB", "resnet18 does not fit in 46.0 MiB: a batch of 1 needs"),
])
def test_a_budget_too_small_is_an_error(cli, fit, message):
    code, out, err = cli("memory", "resnet18", "--fit", fit, "--eval")
    assert code == 1 and out == "" and f"error[E714]: {message}" in err


def test_a_budget_that_is_not_a_size_is_a_usage_error(cli):
    code, _, err = cli("memory", "resnet18", "--fit", "lots")
    assert code == 2 and "'lots' is not a size such as 24GiB" in err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_training_step_on_a_gpu_peaks_near_the_estimate():
    """Weights, gradients, SGD's momentum and the kept activations against what the CUDA
    allocator held at its peak over a step (its workspaces and backward's own maps are
    the difference)."""
    graph = resdsl.build("resnet50")
    model = resdsl.load("resnet50", device="cuda")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(32, 3, 224, 224, device="cuda"), torch.randint(0, 1000, (32,), device="cuda")
    for _ in range(2):  # the second step has momentum buffers from the first
        torch.cuda.reset_peak_memory_stats()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=False)
    peak = torch.cuda.max_memory_allocated()
    need = estimate(graph, 32, training=True, optimizer="sgd", device="cuda")
    assert abs(need.total - peak) / peak < 0.05, (need.total, peak)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_inference_on_a_gpu_peaks_near_the_estimate():
    graph = resdsl.build("resnet50")
    model = resdsl.load("resnet50", device="cuda").eval()
    x = torch.randn(64, 3, 224, 224, device="cuda")
    with torch.no_grad():
        model(x)
        torch.cuda.reset_peak_memory_stats()
        model(x)
    peak = torch.cuda.max_memory_allocated()
    need = estimate(graph, 64, device="cuda")
    assert abs(need.total - peak) / peak < 0.05, (need.total, peak)


def test_the_python_api_is_the_command_and_a_notebook_shows_its_stages():
    need = resdsl.memory("resnet18", batch=4, optimizer="adamw")
    assert need.optimizer == 2 * need.gradients and need.batch == 4
    assert need.total == estimate(resdsl.build("resnet18"), 4, training=True,
                                  optimizer="adamw").total
    html = need._repr_html_()
    assert html.startswith("<table>") and "<td>conv3_x</td>" in html
