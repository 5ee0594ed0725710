"""Table 1 as text: a row per stage, a column pair per network, units in the headers."""

from __future__ import annotations

from dataclasses import replace

from resdsl.backends.summary import METRICS, NetworkSummary, work
from resdsl.ops.shapes import format_shape, spatial


def format_table(summaries: list[NetworkSummary], metric: str = "macs") -> str:
    label, meaning = METRICS[metric]
    big = max(work(s, metric) for s in summaries) >= 1e9
    unit, divisor = ("G", 1e9) if big else ("M", 1e6)
    p_unit, p_divisor = ("M", 1e6) if max(s.params for s in summaries) >= 1e6 else ("K", 1e3)
    names = _stage_names(summaries)
    sizes = [{s.name: format_shape(spatial(s.output)) for s in net.stages} for net in summaries]
    shared_size = all(sizes[0].get(n) == other.get(n, sizes[0].get(n)) for n in names for other in sizes)

    header1, header2 = (["stage", "output"], ["", ""]) if shared_size else (["stage"], [""])
    for net in summaries:
        header1 += [net.network, ""] + ([""] if not shared_size else [])
        header2 += (["output"] if not shared_size else []) + [f"params({p_unit})", f"{unit}{label}"]
    rows = [header1, header2]
    by_name = [{s.name: s for s in net.stages} for net in summaries]
    for name in names:
        row = [name]
        if shared_size:
            row.append(next(s[name] for s in sizes if name in s))
        for net_stages, net_sizes in zip(by_name, sizes):
            stage = net_stages.get(name)
            if not shared_size:
                row.append(net_sizes.get(name, "-"))
            row += ([f"{stage.params / p_divisor:.2f}", f"{work(stage, metric) / divisor:.2f}"]
                    if stage else ["-", "-"])
        rows.append(row)
    total = ["total"] + ([""] if shared_size else [])
    for net in summaries:
        total += ([""] if not shared_size else []) + [
            f"{net.params / p_divisor:.2f}", f"{work(net, metric) / divisor:.2f}"]
    rows.append(total)

    lines = [f"{label}: {meaning}; G = 10^9, M = 10^6, K = 10^3",
             "params: conv and fc weights and biases, and BN's affine scale and shift", ""]
    lines += align(rows)
    lines += ["", "exact counts:"]
    width = max(len(net.network) for net in summaries)
    for net in summaries:
        stride = f"stride on {net.stride_on}, " if net.stride_on else ""
        lines.append(f"  {net.network:<{width}}  {net.params:>14,} params  "
                     f"{work(net, metric):>16,} {label}  (shortcut {net.shortcut}, "
                     f"{stride}{net.file})")
    return "\n".join(lines)


def format_sizes(columns: list[tuple[str, NetworkSummary, tuple[int, int] | None]],
                 metric: str = "macs") -> str:
    """`flops --sizes`: a column group per (network, size), headed `resnet50 @ 160x160`,
    and under the table, for each network, the sizes its output-size columns were not
    checked at. Each column is (name, summary, the (height, width) its columns were
    checked at, or None when it writes none): the columns are read at the size the file
    declares, so at another size the table's output column is inferred, not checked."""
    shown = [replace(s, network=f"{name} @ {format_shape(spatial(s.input))}")
             for name, s, _ in columns]
    notes: dict[str, tuple[tuple[int, int], list[str]]] = {}
    for name, s, at in columns:
        if at is not None and tuple(spatial(s.input)) != tuple(at):
            notes.setdefault(name, (at, []))[1].append(format_shape(spatial(s.input)))
    lines = [f"{name}: output-size columns checked at {format_shape(at)} (the size the file "
             f"declares), not at {', '.join(dict.fromkeys(sizes))}"
             for name, (at, sizes) in notes.items()]
    return "\n".join([format_table(shown, metric), *([""] + lines if lines else [])])


def _stage_names(summaries: list[NetworkSummary]) -> list[str]:
    """Every network's stages, each new one placed after the stage it follows in its net."""
    names: list[str] = []
    seen: set[str] = set()
    for net in summaries:
        previous = None
        for stage in net.stages:
            if stage.name not in seen:
                seen.add(stage.name)
                if previous is not None and names[-1] == previous:  # linear for one net
                    names.append(stage.name)
                else:
                    names.insert(names.index(previous) + 1 if previous else 0, stage.name)
            previous = stage.name
    return names


def align(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        out.append("  ".join(cells).rstrip())
    return out
