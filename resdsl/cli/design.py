"""The designer's questions, answered from the graph alone (no torch): how much memory a
network needs, per layer, and what changed from one network to another."""

from __future__ import annotations

import argparse
import json
import sys

from resdsl.cli.common import (EXIT_USAGE, Command, build, emit, positive,
                               unknown_figure_format)
from resdsl.errors import ResdslError


def _budget(text: str) -> int:
    from resdsl.safety import byte_size

    size = byte_size(text)
    if size is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 24GiB or 80GB")
    return size


def _memory_arguments(parser) -> None:
    parser.add_argument("file", metavar="FILE", help="an .arch file or a bundled network name")
    parser.add_argument("--batch", type=positive, default=1, metavar="N",
                        help="images per step (default 1)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--train", dest="training", action="store_true", default=True,
                      help="a training step: weights, gradients, optimizer state and what "
                           "autograd keeps for backward (the default)")
    mode.add_argument("--eval", dest="training", action="store_false",
                      help="inference: weights and the most activations alive at once")
    parser.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd",
                        help="the optimizer's state in training: sgd (momentum, as resdsl "
                             "train runs; the default) or adamw (two moments)")
    parser.add_argument("--amp", choices=("bf16", "fp16"),
                        help="autocast: convs and fcs run in half, and so do the maps after")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where it runs: dropout keeps a float mask on a CPU, a bool one "
                             "on a GPU (default cpu)")
    parser.add_argument("--fit", type=_budget, metavar="SIZE",
                        help="also print the largest batch that fits in SIZE (24GiB, 80GB)")
    parser.add_argument("--json", action="store_true",
                        help="bytes: weights, gradients, optimizer, activations, total, and "
                             "layers (each with its name, op, stage and bytes)")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="write the table or JSON here (whole or not at all)")


def _memory(args) -> int:
    from resdsl.backends.pytorch.memory import estimate, format_memory, largest_batch
    from resdsl.safety import format_bytes

    graph = build(args.file, args)
    options = dict(training=args.training, optimizer=args.optimizer,
                   amp=args.amp, device=args.device)
    need = estimate(graph, args.batch, **options)
    fit = largest_batch(graph, args.fit, **options) if args.fit else None
    if args.json:
        result = need.to_dict() | ({"fit": {"budget": args.fit, "batch": fit}} if fit else {})
        text = json.dumps(result, separators=(",", ":")) + "\n"
    else:
        text = format_memory(need, graph, options["optimizer"], args.amp) + "\n"
        if fit is not None:
            text += (f"\nthe largest batch that fits in {format_bytes(args.fit)}: {fit:,} "
                     f"(needs {format_bytes(estimate(graph, fit, **options).total)})\n")
    emit(text, args.output)
    return 0


MEMORY = Command(
    "memory", "memory per layer in training or inference, and the batch that fits",
    "Print, per layer, the activation memory of a batch: in training what autograd keeps "
    "for the backward pass (each storage once, at the layer that allocated it; equal to "
    "what torch's saved-tensor hooks see), in inference the maps alive while the layer "
    "runs; then the weights, gradients, optimizer state and the total. --fit prints the "
    "largest batch that fits a memory size. Nothing is allocated: it is read from the "
    "graph.",
    ("resdsl memory resnet50 --batch 32", "resdsl memory resnet152 --amp bf16 --fit 80GB",
     "resdsl memory resnet50 --eval --batch 64 --json"),
    _memory_arguments, _memory)


def _diff_arguments(parser) -> None:
    parser.add_argument("a", metavar="A", help="the network before: a file or bundled name")
    parser.add_argument("b", metavar="B", help="the network after (A@n=18 gives a file its "
                                               "own values, as in every command)")
    parser.add_argument("--changed", action="store_true", help="only the parts that changed")
    parser.add_argument("--json", action="store_true",
                        help="the same as numbers: per part each side's output, params, macs "
                             "and memory (bytes), the delta and the changed layers; totals")
    parser.add_argument("-o", "--output", metavar="FIG",
                        help="also draw the two side by side, the changed parts outlined "
                             "in red: FIG.svg, .png, .pdf or .dot")


def _diff(args) -> int:
    from resdsl.backends.diff import diff, format_diff

    if unknown_figure_format("diff", args.output):
        return EXIT_USAGE
    graphs, failed = [], []
    for name in (args.a, args.b):  # both reported when both fail
        try:
            graphs.append(build(name, args))
        except ResdslError as error:
            failed.append(error)
    for error in failed[:-1]:
        print(error.diagnostic.format(), file=sys.stderr)
    if failed:
        raise failed[-1]
    a, b = graphs
    result = diff(a, b)
    if args.output:
        _draw(a, b, result, args.output)
    text = (json.dumps(result.to_dict(), separators=(",", ":")) if args.json
            else format_diff(result, args.changed))
    sys.stdout.write(text + "\n")
    return 0


def _draw(a, b, result, output: str) -> None:
    """The two columns as `resdsl render` draws them, each box of a changed part outlined."""
    from resdsl.backends.diff import part_of
    from resdsl.backends.figure.draw import draw, write
    from resdsl.backends.figure.layout import layout

    changed = {row.name for row in result.rows if row.changed}
    columns = [layout(a, 0), layout(b, 1, f"{b.graph['name']} (changed parts in red)")]
    for column, graph in zip(columns, (a, b)):
        for box in column.boxes:
            if box.node and part_of(graph, box.node) in changed:
                box.style.update(color="#d62728", penwidth="2.5")
    write(draw(columns), output)
    print(f"wrote {output}", file=sys.stderr)


DIFF = Command(
    "diff", "what changed from network A to B, stage by stage and unit by unit",
    "Compare two networks part by part (each residual unit, and each stage's layers outside "
    "its units): output shape, params, multiply-adds and the activation memory a training "
    "step keeps for one image, each side by side with the change, and under each changed "
    "part the layers that changed, as the figures label them. --set applies to both; "
    "A@name=value gives one side its own. With -o, also draw the two side by side with the "
    "changed parts outlined.",
    ("resdsl diff resnet50 resnet50-d", "resdsl diff cifar-resnet cifar-resnet@n=9 --changed",
     "resdsl diff resnet34 resnet50 -o diff.svg", "resdsl diff resnet18 resnet18-d --json"),
    _diff_arguments, _diff)
