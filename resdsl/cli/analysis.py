"""The commands of the analysis path, none of which imports torch: flops, check, list,
limits."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from resdsl.cli.common import EXIT_INPUT, Command, build, emit
from resdsl.errors import ResdslError, ResdslWarning
from resdsl.ops.shapes import format_shape


def _flops_arguments(parser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help=".arch files or bundled network names, side by side")
    parser.add_argument("--flops", action="store_true",
                        help="report FLOPs = 2 x MACs instead of MACs")
    parser.add_argument("--all-ops", action="store_true",
                        help="also count BN, ReLU and add (one op per element) and pooling "
                             "(one per window element)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per file and line, with integer params, macs, "
                             "flops and other_ops, input and output shapes, and stages")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="write the table or JSON here (whole or not at all)")
    parser.add_argument("--sizes", type=_sizes, metavar="N,HxW,...",
                        help="count each file at each of these input sizes (N is NxN; the "
                             "channels are those of the file's input, or of --set input=): a "
                             "column group, or a JSON object, per size, each what --set "
                             "input=CxHxW gives")


def _sizes(text: str) -> list[tuple[int, int]]:
    from resdsl.api import read_sizes

    try:
        return read_sizes(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _flops(args) -> int:
    from resdsl.backends.summary import summarize

    metric = ("flops" if args.flops else "macs") + ("+ops" if args.all_ops else "")
    if args.sizes:
        from resdsl.api import Sizes, count_sizes

        dump_to = (lambda text: print(text, file=sys.stderr)) if args.dump_ir else None
        per_file = [count_sizes(path, args.sizes, dump_to, **dict(args.overrides))
                    for path in args.files]
        summaries = Sizes([s for sizes in per_file for s in sizes],
                          [n for sizes in per_file for n in sizes.names],
                          [at for sizes in per_file for at in sizes.columns_at])
    else:
        summaries = [summarize(build(path, args)) for path in args.files]
    if args.json:
        text = "".join(json.dumps(s.to_dict(), separators=(",", ":")) + "\n" for s in summaries)
    elif args.sizes:
        text = summaries.table(metric) + "\n"
    else:
        from resdsl.backends.table import format_table
        text = format_table(summaries, metric) + "\n"
    emit(text, args.output)
    return 0


FLOPS = Command(
    "flops", "params and multiply-adds per stage, Table 1 style",
    "Print params and multiply-adds per stage and in total, one column pair per file, like "
    "the paper's Table 1. By default the work column counts MACs: multiply-adds of conv "
    "and fc layers only, which is what the paper calls FLOPs (ResNet-50: 3.8 x 10^9).",
    ("resdsl flops resnet18 resnet34 resnet50 resnet101 resnet152",
     "resdsl flops archs/cifar-resnet.arch --set n=18 --json",
     "resdsl flops resnet50 --sizes 160,224,320,448"),
    _flops_arguments, _flops)


def _check_arguments(parser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help=".arch files, each checked even when one before it fails")
    parser.add_argument("--json", action="store_true",
                        help="diagnostics as a JSON list (codes are listed in the README)")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="write the report or JSON here (whole or not at all)")


def _check(args) -> int:
    """Every file, even after one fails; diagnostics as text on stderr or as one JSON list.
    Warnings are this command's own report, so they are not also issued as Python's."""
    from resdsl.backends.summary import summarize

    reports, diagnostics, failed = [], [], False
    for path in args.files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResdslWarning)
                graph = build(path, args)
        except ResdslError as error:
            found, failed = [*error.warnings, error.diagnostic], True
        else:
            found = graph.graph["warnings"]
            reports.append(_format_check(graph, summarize(graph)) + "\n")
        diagnostics += [d.to_dict(file=str(path)) for d in found]
        if not args.json:
            for diagnostic in found:
                print(diagnostic.format(), file=sys.stderr)
    text = json.dumps(diagnostics, indent=2) + "\n" if args.json else "".join(reports)
    if text:
        emit(text, args.output)
    return EXIT_INPUT if failed else 0


def _format_check(graph, summary) -> str:
    import networkx as nx

    rows = [("node", "op", "output (CxHxW)", "params", "MACs")]
    for node in nx.topological_sort(graph):
        a = graph.nodes[node]
        rows.append((node, a["op"], format_shape(a["shape"]), f"{a['params']:,}",
                     f"{a['macs']:,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    stride = f", stride on {summary.stride_on}" if summary.stride_on else ""
    lines = [f"{summary.network} ({summary.file}): input {format_shape(summary.input)}, "
             f"shortcut {summary.shortcut}{stride}"]
    for r in rows:
        lines.append(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  "
                     f"{r[3]:>{widths[3]}}  {r[4]:>{widths[4]}}")
    lines.append(f"ok: {summary.params:,} params, {summary.macs:,} MACs "
                 "(multiply-adds of conv and fc layers)")
    return "\n".join(lines)


CHECK = Command(
    "check", "validate files: every layer's output shape, or diagnostics as JSON",
    "Validate .arch files through every pass and print each node of the IR with its output "
    "shape (C x H x W), params and MACs; errors and warnings go to stderr. With --json, "
    "print instead one JSON list of every file's errors and warnings, each an object with "
    "file, line, column, end, severity, code, message and hint, for editors and CI. The "
    "exit code is 1 when any file has an error.",
    ("resdsl check archs/resnet34.arch", "resdsl check --json archs/*.arch"),
    _check_arguments, _check)


def _list(args) -> int:
    from resdsl.api import count
    from resdsl.backends.table import align
    from resdsl.bundled import about, bundled_archs

    archs = bundled_archs()
    rows = [["name", "input", "layers", "params(M)", "GMACs"]]
    for path in archs.values():
        s = count(str(path))
        rows.append([path.stem, format_shape(s.input), str(s.layers), f"{s.params / 1e6:.2f}",
                     f"{s.macs / 1e9:.2f}"])
    abouts = ["about"] + [about(path) for path in archs.values()]
    folder = next(iter(archs.values())).parent if archs else "(none)"
    lines = [f"networks that ship with resdsl ({folder}); give a name to any command, "
             "as in `resdsl flops resnet50`",
             "layers: conv and fc layers, as the paper counts depth; MACs: multiply-adds of "
             "conv and fc layers at the input size; M = 10^6, G = 10^9", ""]
    lines += [f"{row}  {text}" for row, text in zip(align(rows), abouts)]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


LIST = Command(
    "list", "the networks that ship with resdsl, one line each",
    "List the networks that ship with resdsl (the archs/ folder), with their input size, "
    "depth, params and multiply-adds, and what each is. Any command takes such a name in "
    "place of a file, from any directory.",
    ("resdsl list", "resdsl flops resnet50 resnet50-v1.5"),
    lambda parser: None, _list, network_options=False)


def _limits(args) -> int:
    from resdsl.safety import format_limits

    sys.stdout.write(
        "safety limits: an error names the one that was hit; raise it with --limit NAME=VALUE "
        "on any command,\nor in Python with `with resdsl.limits(NAME=VALUE):`. Byte limits "
        "take sizes such as 64GiB or 200MB.\n\n" + format_limits() + "\n")
    return 0


LIMITS = Command(
    "limits", "the safety limits, their defaults, and how to raise them",
    "Print the safety limits that keep a hostile or mistyped .arch file from hanging resdsl "
    "or exhausting memory: each limit, its default and what it bounds.",
    ("resdsl limits", "resdsl flops big.arch --limit layers=1000000"),
    lambda parser: None, _limits, network_options=False)
