"""archs/resnet{50,101,152}-caffe.arch against the authors' own Caffe deploy files
(tests/data/caffe, MIT): every conv of the prototxt, by its Caffe name, has the kernel,
stride, padding, width and bias of the IR node it names, and pool1 pools as Caffe does."""

import re
from pathlib import Path

import numpy as np
import pytest

import resdsl
from tests.conftest import ARCHS

CAFFE = Path(__file__).parent / "data" / "caffe"


def _layers(path: Path) -> list[dict]:
    """The prototxt's layers as flat dicts of their scalar fields (nested blocks such as
    convolution_param are merged in): enough of the text format for deploy files."""
    layers, stack = [], []
    for raw in path.read_text().splitlines():
        line = raw.split("#")[0].strip()
        if line.endswith("{"):
            stack.append(line[:-1].strip())
            if stack == ["layer"]:
                layers.append({})
        elif line == "}":
            stack.pop()
        elif ":" in line and stack:
            key, value = (part.strip() for part in line.split(":", 1))
            layers[-1].setdefault(key, value.strip('"'))
    return layers


def _node(name: str) -> str:
    """Caffe's layer name as the IR node it is: res3a_branch2b → conv3_x.0.conv2,
    res4b22_branch1 → conv4_x.22.shortcut.conv."""
    if name == "conv1":
        return "conv1.conv"
    stage, letter, number, branch = re.fullmatch(r"res(\d)([a-z])(\d*)_branch(1|2[abc])",
                                                 name).groups()
    index = int(number) if number else ord(letter) - ord("a")  # res4b22, or res2c
    member = "shortcut.conv" if branch == "1" else f"conv{'abc'.index(branch[1]) + 1}"
    return f"conv{stage}_x.{index}.{member}"


@pytest.mark.parametrize("depth", [50, 101, 152])
def test_every_caffe_conv_is_the_arch_files_conv(depth):
    layers = _layers(CAFFE / f"ResNet-{depth}-deploy.prototxt")
    graph = resdsl.build(ARCHS / f"resnet{depth}-caffe.arch")
    convs = [layer for layer in layers if layer["type"] == "Convolution"]
    assert len(convs) == sum(1 for _, o in graph.nodes(data="op") if o == "conv")
    for layer in convs:
        node = graph.nodes[_node(layer["name"])]
        assert (node["kernel"], node["stride"], node["padding"], node["out_channels"]) == (
            int(layer["kernel_size"]), int(layer.get("stride", 1)), int(layer.get("pad", 0)),
            int(layer["num_output"])), layer["name"]
        assert node["bias"] == (layer.get("bias_term", "true") == "true"), layer["name"]
    (pool1,) = [layer for layer in layers if layer["name"] == "pool1"]
    pool = graph.nodes["conv2_x.maxpool"]
    assert pool1["pool"] == "MAX" and (pool["kernel"], pool["stride"], pool["padding"]) == (
        int(pool1["kernel_size"]), int(pool1["stride"]), int(pool1.get("pad", 0)))
    assert pool["ceil"] and pool["shape"] == (64, 56, 56)
    fc = [layer for layer in layers if layer["type"] == "InnerProduct"]
    assert [int(layer["num_output"]) for layer in fc] == [graph.nodes["head.fc"]["out_features"]]


def test_resnet50s_conv1_bias_gives_the_releases_count():
    assert resdsl.count(ARCHS / "resnet50-caffe.arch").params == 25_557_096
    assert resdsl.count(ARCHS / "resnet50.arch").params == 25_557_096 - 64


def _caffe_max_pool(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """Caffe's PoolingLayer for MAX, pad 0: ceil((H - k) / s) + 1 windows a side, each
    starting at i * s and clipped to the image."""
    h, w = x.shape[-2:]
    out_h, out_w = -(-(h - kernel) // stride) + 1, -(-(w - kernel) // stride) + 1
    out = np.empty(x.shape[:-2] + (out_h, out_w), x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            out[..., i, j] = x[..., i * stride:min(i * stride + kernel, h),
                               j * stride:min(j * stride + kernel, w)].max(axis=(-2, -1))
    return out


def test_pool1_pools_as_caffe_does_and_not_as_torchvisions_pad_1():
    torch = pytest.importorskip("torch")
    model = resdsl.load(ARCHS / "resnet50-caffe.arch").eval()
    pool = model.conv2_x.maxpool
    x = torch.randn(2, 64, 112, 112)
    caffe = _caffe_max_pool(x.numpy(), 3, 2)
    assert caffe.shape[-2:] == (56, 56)
    np.testing.assert_array_equal(pool(x).numpy(), caffe)
    torchvision_pool = resdsl.load(ARCHS / "resnet50.arch").conv2_x.maxpool
    assert not np.array_equal(torchvision_pool(x).numpy(), caffe)  # shifted by one pixel
