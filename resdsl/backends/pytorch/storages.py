"""The memory each layer of a torch module of the IR holds, from the graph alone: in a
training step, the tensors autograd keeps for the backward pass; in inference, the
tensors alive while the layer runs.

Storages, not tensors, are counted, as torch's saved-tensor hooks and its allocator see
them. An op that works in place (`OpDef.in_place`: ReLU, `out += identity`) writes into
its input's storage where nothing else reads that input, as the emitted module does; a
storage that several ops keep (a conv's output, kept by its BN; a ReLU's, kept by it and
by the next conv) counts once, at the layer that allocated it. What each op keeps is its
declaration (`OpDef.kept`). Under autocast (`amp`) the ops that run in half (`OpDef.
autocast`: conv, fc) make half maps, which later ops keep as half, and keep half copies
of their weights and of a float32 input.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from resdsl.ir.graph import ordered_inputs
from resdsl.ops.registry import Kept, op
from resdsl.ops.shapes import numel

FLOAT32, HALF = 4, 2


@dataclass(frozen=True)
class LayerMemory:
    """One node's bytes for a whole batch: `kept` for backward in a training step (the
    storages it allocated that backward keeps, and tensors of its own), `live` alive
    while it runs in inference (its inputs, its output and what later layers still read)."""

    name: str
    op: str
    stage: str | None
    kept: int
    live: int


def layers(graph: nx.DiGraph, batch: int, amp: str | None = None,
           device: str = "cpu") -> list[LayerMemory]:
    """Every node but the output, in data-flow order: the input is the batch of images,
    which the first conv keeps for its weights' gradient."""
    return _Walk(graph, batch, amp, device).layers()


class _Walk:
    def __init__(self, graph, batch, amp, device):
        self.graph, self.batch, self.amp, self.device = graph, batch, amp, device
        position = {node: i for i, node in enumerate(graph.nodes)}  # as elaboration added
        self.order = list(nx.lexicographical_topological_sort(graph, key=position.get))
        self.storage: dict[str, str] = {}  # node -> the node that allocated its storage
        self.half: dict[str, bool] = {}  # storage -> whether it holds half floats
        for node in self.order:
            self._place(node)

    def _place(self, node: str) -> None:
        attrs, inputs = self.graph.nodes[node], ordered_inputs(self.graph, node)
        declared = op(attrs["op"])
        # the output, and a softmax the loss applies, make nothing of their own
        if attrs["op"] == "output" or declared.left_to_loss or self._in_place(node):
            self.storage[node] = self.storage[inputs[0]]
            return
        self.storage[node] = node
        self.half[node] = bool(self.amp) and attrs["op"] != "input" and (
            declared.autocast or any(self.half[self.storage[i]] for i in inputs))

    def _in_place(self, node: str) -> bool:
        inputs = ordered_inputs(self.graph, node)
        return (op(self.graph.nodes[node]["op"]).in_place and bool(inputs)
                and self.graph.out_degree(inputs[0]) == 1)

    def bytes_of(self, storage: str) -> int:
        size = HALF if self.half[storage] else FLOAT32
        return numel(self.graph.nodes[storage]["shape"]) * self.batch * size

    def layers(self) -> list[LayerMemory]:
        storages, own = self._kept()
        live = self._live()
        result = []
        for node in self.order:
            attrs = self.graph.nodes[node]
            if attrs["op"] == "output":
                continue
            kept = own.get(node, 0) + (self.bytes_of(node) if node in storages else 0)
            result.append(LayerMemory(node, attrs["op"], attrs.get("stage"), kept, live[node]))
        return result

    def _kept(self) -> tuple[set[str], dict[str, int]]:
        """The storages backward keeps, and each node's bytes of tensors of its own."""
        storages: set[str] = set()
        own: dict[str, int] = {}
        for node in self.order:
            attrs, inputs = self.graph.nodes[node], ordered_inputs(self.graph, node)
            declared = op(attrs["op"])
            shapes = [self.graph.nodes[i]["shape"] for i in inputs]
            for kept in declared.kept(attrs):
                if kept.tensor == "own":
                    own[node] = own.get(node, 0) + self._own(node, kept, shapes)
                    continue
                targets = ([node] if kept.tensor == "output" else
                           inputs[:1] if kept.tensor == "input" else inputs)
                for target in targets:
                    copy = self._copy(node, target, kept)
                    if copy:
                        own[node] = own.get(node, 0) + copy
                    else:
                        storages.add(self.storage[target])
        return storages, own

    def _copy(self, node: str, target: str, kept: Kept) -> int:
        """Bytes of the copy backward keeps in place of an input: one the op overwrote in
        place, or a float32 input that autocast cast to half; 0 when it keeps the input."""
        if kept.tensor != "output" and target != node and \
                self.storage[node] == self.storage[target]:
            return self.bytes_of(self.storage[target])
        storage = self.storage[target]
        if self.amp and op(self.graph.nodes[node]["op"]).autocast and not self.half[storage]:
            return numel(self.graph.nodes[storage]["shape"]) * self.batch * HALF
        return 0

    def _own(self, node: str, kept: Kept, shapes) -> int:
        attrs = self.graph.nodes[node]
        half = self.half[self.storage[node]]
        size = {"activation": HALF if half else FLOAT32, "float32": FLOAT32, "int64": 8,
                "mask": 1 if self.device == "cuda" else (HALF if half else FLOAT32),
                "autocast": HALF if self.amp else 0}[kept.dtype]
        elements = kept.elements(attrs, shapes, attrs["shape"])
        return elements * size * (self.batch if kept.per_image else 1)

    def _live(self) -> dict[str, int]:
        """For each node, the bytes of the storages alive while it runs: allocated at or
        before it and read (or written in place) at or after it."""
        index = {node: i for i, node in enumerate(self.order)}
        last: dict[str, int] = {}
        for node in self.order:
            for used in [node, *ordered_inputs(self.graph, node)]:
                storage = self.storage[used]
                last[storage] = max(last.get(storage, 0), index[node])
        live, alive = {}, {}
        for i, node in enumerate(self.order):
            if self.storage[node] == node:
                alive[node] = self.bytes_of(node)
            live[node] = sum(alive.values())
            for storage in [s for s in alive if last[s] <= i]:
                del alive[storage]
        return live
