"""Fold each BN into the conv before it, for inference (`--fold-bn`). A BN that runs
before its conv (pre-activation) stays a BN.

In eval mode a BN is an affine map per channel, so conv followed by BN is one conv with a
scaled weight and a bias. The pass rewrites the graph; the arithmetic on the weights lives
in the generated source (`fold_batchnorm`), next to the module that uses it. Not part of
the default pipeline: a training graph keeps its BN.
"""

from __future__ import annotations

import networkx as nx

from resdsl.ir.graph import nodes_of
from resdsl.passes.base import Pass
from resdsl.passes.count_costs import CountCosts


class FoldBatchNorm(Pass):
    name = "fold_batchnorm"

    def apply(self, graph: nx.DiGraph) -> None:
        for bn in list(nodes_of(graph, "bn")):
            (conv,) = graph.predecessors(bn)
            attrs = graph.nodes[conv]
            if attrs["op"] != "conv" or graph.out_degree(conv) != 1:
                continue
            attrs["bias"] = True
            attrs["folded_bn"] = bn
            for successor, edge in list(graph.succ[bn].items()):
                graph.add_edge(conv, successor, **edge)
            graph.remove_node(bn)
        graph.graph["folded_bn"] = True
        CountCosts().apply(graph)
