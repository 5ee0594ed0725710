"""The IR contract (docs/ARCHITECTURE.md, "The IR contract"), checked on every network in
archs/."""

import networkx as nx
import pytest

from resdsl import build
from tests.conftest import ARCHS

ALL = sorted(p.name for p in ARCHS.glob("*.arch"))


@pytest.mark.parametrize("name", ALL)
def test_ir_contract(name):
    graph = build(ARCHS / name)
    assert isinstance(graph, nx.DiGraph) and nx.is_directed_acyclic_graph(graph)
    assert [n for n, op in graph.nodes(data="op") if op == "input"] == ["input"]
    for node, a in graph.nodes(data=True):
        assert a["scope"] == node
        assert {"op", "span", "shape", "params", "macs"} <= set(a)
        assert a["op"] in {"input", "conv", "bn", "relu", "maxpool", "avgpool", "fc", "add",
                           "pad", "dropout", "softmax", "output", "sigmoid", "mul", "highway"}
        if a["op"] == "add":
            inputs = sorted(graph.in_edges(node, data="input"), key=lambda e: e[2])
            assert [i for _, _, i in inputs] == [0, 1]
            assert graph.nodes[inputs[0][0]]["shape"] == graph.nodes[inputs[1][0]]["shape"]
    assert sum(a["params"] for _, a in graph.nodes(data=True)) > 0


def test_residual_unit_reads_like_the_paper():
    """Fig. 2: conv-BN-ReLU, conv-BN, add the shortcut, then ReLU."""
    graph = build(ARCHS / "resnet34.arch")
    chain = list(nx.dfs_preorder_nodes(graph.subgraph(
        [n for n in graph if n.startswith("conv4_x.2.")]), "conv4_x.2.conv1"))
    assert chain == ["conv4_x.2.conv1", "conv4_x.2.bn1", "conv4_x.2.relu1", "conv4_x.2.conv2",
                     "conv4_x.2.bn2", "conv4_x.2.add", "conv4_x.2.relu2"]
    assert list(graph.predecessors("conv4_x.2.add")) == ["conv4_x.2.bn2", "conv4_x.1.relu2"]


def test_dump_ir_shows_every_pass(write_arch):
    seen = []
    build(ARCHS / "cifar-resnet.arch", dump_to=seen.append)
    titles = [text.splitlines()[0].split(":")[0] for text in seen]
    assert titles == ["== after elaborate", "== after infer_shapes", "== after insert_shortcuts",
                      "== after count_costs", "== after verify"]
    # units are data from the start (no block pseudo-op), each node with its branch
    assert "conv3_x.0.conv1" in seen[0] and "branch=residual" in seen[0]
    assert "conv3_x.0.add" in seen[0] and "branch=merge" in seen[0]
    assert "conv3_x.0.shortcut.pad" in seen[2] and "branch=shortcut" in seen[2]


def test_cost_grows_linearly_with_depth():
    """Node count is linear in blocks (the passes walk each node a bounded number of times)."""
    sizes = [build(ARCHS / "cifar-resnet.arch", n=n).number_of_nodes() for n in (10, 100, 1000)]
    assert sizes[2] - sizes[1] == 10 * (sizes[1] - sizes[0])
