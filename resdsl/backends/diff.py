"""What changed from one network to another, stage by stage and unit by unit: each part's
output, params, multiply-adds and activation memory side by side, with the layers that
changed named as the paper's figures label them (`7x7 conv, 64, /2` → three 3x3 convs),
as text (`resdsl diff`), JSON and the HTML a notebook shows.

A part is a residual unit (`conv3_x.0`), or the layers of a stage outside its units, named
by the stage (the stem `conv1`, conv2_x's max pool, the head). Parts are matched by stage name and, within a stage,
units by their place in it, so a deeper network shows the units it adds as new.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from html import escape

import networkx as nx

from resdsl.backends.pytorch.storages import layers
from resdsl.backends.summary import NetworkSummary, summarize
from resdsl.backends.table import align
from resdsl.ops.registry import op
from resdsl.ops.shapes import format_shape

SETTINGS = ("shortcut", "stride_on", "projection", "preact", "act", "bias", "bn", "classes")


@dataclass
class Part:
    name: str
    output: list[int]
    params: int = 0
    macs: int = 0
    memory: int = 0  # bytes a training step keeps for backward, for one image
    layers: list[str] = field(default_factory=list)  # what each layer is, in order


@dataclass
class Row:
    name: str
    a: Part | None
    b: Part | None
    changes: list[str]  # the layers that differ, as "A → B", "+ B" or "− A"

    @property
    def changed(self) -> bool:
        return bool(self.changes) or self.a is None or self.b is None or any(
            getattr(self.a, key) != getattr(self.b, key) for key in ("params", "macs", "memory"))

    def delta(self, key: str) -> int:
        return getattr(self.b, key, 0) - getattr(self.a, key, 0)


@dataclass
class NetworkDiff:
    a: NetworkSummary
    b: NetworkSummary
    rows: list[Row]
    memory: tuple[int, int]  # each network's activations for one image, in bytes
    settings: dict[str, tuple]  # the settings that differ: name -> (A's, B's)

    def to_dict(self) -> dict:
        def side(part: Part | None):
            return None if part is None else {k: v for k, v in asdict(part).items()
                                              if k not in ("name", "layers")}
        return {"a": {"network": self.a.network, "file": self.a.file},
                "b": {"network": self.b.network, "file": self.b.file},
                "settings": {name: {"a": x, "b": y} for name, (x, y) in self.settings.items()},
                "total": {key: {"a": x, "b": y, "delta": y - x} for key, x, y in (
                    ("params", self.a.params, self.b.params), ("macs", self.a.macs, self.b.macs),
                    ("memory", *self.memory))},
                "parts": [{"name": row.name, "changed": row.changed, "a": side(row.a),
                           "b": side(row.b),
                           "delta": {key: row.delta(key) for key in ("params", "macs", "memory")},
                           "changes": row.changes} for row in self.rows]}

    def _repr_html_(self) -> str:
        return format_diff_html(self)


def diff(a: nx.DiGraph, b: nx.DiGraph) -> NetworkDiff:
    parts_a, parts_b = _parts(a), _parts(b)
    rows = []
    for name in _merged_order(list(parts_a), list(parts_b)):
        part_a, part_b = parts_a.get(name), parts_b.get(name)
        rows.append(Row(name, part_a, part_b, _changes(part_a, part_b)))
    memory = tuple(sum(p.memory for p in parts.values()) for parts in (parts_a, parts_b))
    configs = a.graph["config"], b.graph["config"]
    settings = {name: values for name in SETTINGS
                if len(set(values := tuple(getattr(c, name) for c in configs))) > 1}
    return NetworkDiff(summarize(a), summarize(b), rows, memory, settings)


def part_of(graph: nx.DiGraph, node: str) -> str:
    """The part a node belongs to: its unit, or its stage's layers (the input: `input`)."""
    attrs = graph.nodes[node]
    if attrs["op"] == "input":
        return "input"
    return attrs.get("unit") or attrs["stage"]


def _parts(graph: nx.DiGraph) -> dict[str, Part]:
    kept = {layer.name: layer.kept for layer in layers(graph, 1)}
    parts: dict[str, Part] = {}
    for node in graph.nodes:  # in the order elaboration added them: data flow
        attrs = graph.nodes[node]
        if attrs["op"] == "output":
            continue
        name = part_of(graph, node)
        part = parts.setdefault(name, Part(name, list(attrs["shape"])))
        part.params += attrs.get("params", 0)
        part.macs += attrs.get("macs", 0)
        part.memory += kept.get(node, 0)
        if attrs.get("branch") not in ("shortcut", "se", "gate"):
            part.output = list(attrs["shape"])
        if attrs["op"] != "input":
            part.layers.append(_describe(attrs))
    return parts


def _describe(attrs: dict) -> str:
    """A layer as the figures label it (`3x3 conv, 128, /2`), or its op (bn, relu); a
    shortcut's or gate's layers say where they are."""
    declared = op(attrs["op"])
    text = declared.label(attrs) if declared.label else attrs["op"]
    branch = attrs.get("branch")
    return f"{text} ({branch})" if branch in ("shortcut", "se", "gate") else text


def _changes(a: Part | None, b: Part | None) -> list[str]:
    if a is None or b is None:
        return []
    changes = []
    matcher = difflib.SequenceMatcher(a=a.layers, b=b.layers, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        old, new = "; ".join(a.layers[i1:i2]), "; ".join(b.layers[j1:j2])
        if tag == "replace":
            changes.append(f"{old} → {new}")
        elif tag == "delete":
            changes.append(f"− {old}")
        elif tag == "insert":
            changes.append(f"+ {new}")
    return changes


def _merged_order(a: list[str], b: list[str]) -> list[str]:
    """Both networks' parts, each part of B that A lacks placed after the one before it."""
    order = list(a)
    for index, name in enumerate(b):
        if name not in order:
            before = b[index - 1] if index else None
            order.insert(order.index(before) + 1 if before in order else 0, name)
    return order


def shape_text(part: Part | None) -> str:
    return "-" if part is None else format_shape(part.output)


COLUMNS = (("params", 1, "{:,.0f}"), ("macs", 1e6, "{:,.2f}"), ("memory", 2**20, "{:,.2f}"))
HEADINGS = ("params", "MMACs", "memory (MiB)")
LEGEND = ("params: conv and fc weights and biases, and BN's affine scale and shift; MMACs: "
          "multiply-adds of conv and fc layers, 10^6; memory: the activations a training step "
          "keeps for backward, for one image (resdsl memory --batch 1), MiB = 2^20 bytes")


def _cells(row: Row) -> list[str]:
    cells = [row.name + (" *" if row.changed else ""), shape_text(row.a), shape_text(row.b)]
    for key, scale, form in COLUMNS:
        values = [getattr(part, key) if part else None for part in (row.a, row.b)]
        cells += ["-" if value is None else form.format(value / scale) for value in values]
        delta = row.delta(key) / scale
        cells.append("" if not delta else ("+" if delta > 0 else "") + form.format(delta))
    return cells


def format_diff(result: NetworkDiff, changed_only: bool = False) -> str:
    a, b = result.a, result.b
    header1 = ["part", "output", ""]
    header2 = ["", a.network, b.network]
    for heading in HEADINGS:
        header1 += [heading, "", ""]
        header2 += [a.network, b.network, "change"]
    rows, notes = [header1, header2], {}
    for row in result.rows:
        if changed_only and not row.changed:
            continue
        rows.append(_cells(row))
        notes[len(rows) - 1] = row.changes + (["only in " + (b.network if row.a is None else
                                                             a.network)]
                                              if row.a is None or row.b is None else [])
    totals = ["total", "", ""]
    for (key, scale, form), (x, y) in zip(COLUMNS, ((a.params, b.params), (a.macs, b.macs),
                                                    result.memory)):
        delta = (y - x) / scale
        totals += [form.format(x / scale), form.format(y / scale),
                   ("+" if delta > 0 else "") + form.format(delta) if delta else ""]
    rows.append(totals)
    settings = ", ".join(f"{name} {x} → {y}" for name, (x, y) in result.settings.items())
    lines = [f"{a.network} ({a.file}) → {b.network} ({b.file})"
             + (f"\nsettings: {settings}" if settings else ""), LEGEND,
             "* a part that changed; under it, its layers that changed (A → B, + added, "
             "− removed)", ""]
    for index, line in enumerate(align(rows)):
        lines.append(line)
        lines += [f"    {note}" for note in notes.get(index, [])]
    changed = sum(row.changed for row in result.rows)
    lines += ["", f"{changed} of {len(result.rows)} parts changed"]
    return "\n".join(lines)


def format_diff_html(result: NetworkDiff) -> str:
    cell = '<td style="text-align:right">{}</td>'.format
    head = "".join(f"<th>{escape(h)}</th>" for h in (
        "part", f"output {result.a.network}", f"output {result.b.network}",
        *(f"{heading} {side}" for heading in HEADINGS
          for side in (result.a.network, result.b.network, "change"))))
    body = []
    for row in result.rows:
        cells = _cells(row)
        style = ' style="background:#fff3cd"' if row.changed else ""
        changes = "<br>".join(escape(change) for change in row.changes)
        body.append(f"<tr{style}><td>{escape(cells[0])}"
                    f"{'<br><small>' + changes + '</small>' if changes else ''}</td>"
                    + "".join(cell(escape(c)) for c in cells[1:]) + "</tr>")
    return (f"<table><caption>{escape(result.a.network)} → {escape(result.b.network)}"
            f"</caption><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"<p><small>{escape(LEGEND)}</small></p>")
