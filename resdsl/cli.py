"""The `resdsl` command. Results go to stdout, diagnostics to stderr.

Exit codes: 0 success; 1 a problem with the input (.arch text or --set), reported as
`file:line:col: error: ...`; 2 bad command-line usage; 3 an internal error (a bug in
resdsl: set RESDSL_DEBUG=1 for the traceback); 130 interrupted (`train` saves first).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import traceback
from pathlib import Path

from resdsl.errors import ResdslError
from resdsl.ir.ops import format_shape
from resdsl.safety import limits

EXIT_INPUT, EXIT_USAGE, EXIT_INTERNAL = 1, 2, 3


def _limits_table() -> str:
    from resdsl.safety import DESCRIPTIONS, Limits, format_bytes

    rows = []
    for name, what in DESCRIPTIONS.items():
        default = getattr(Limits(), name)
        shown = ("free memory" if default is None else format_bytes(default)
                 if name == "file_size" else f"{default:,}")
        rows.append(f"  {name:<13} {shown:>17}  {what}")
    return "\n".join(rows)


EPILOG = f"""\
exit codes: 0 success; 1 error in an .arch file, a --set value or other input; 2 bad
usage; 3 internal error (set RESDSL_DEBUG=1 to see the traceback); 130 interrupted
(train saves a checkpoint first)

limits (--limit NAME=VALUE; errors say which one was hit):
{_limits_table()}"""


def _command(commands, common, name: str, examples: str, help: str, description: str):
    """A subcommand with the shared options, a wrapped description, and the exit codes
    and examples after its options."""
    return commands.add_parser(name, parents=[common], help=help,
                               formatter_class=argparse.RawDescriptionHelpFormatter,
                               epilog=EPILOG + examples, description=_wrap(description))


def _wrap(text: str) -> str:
    """Descriptions keep their layout (the epilogs hold examples), so wrap them here."""
    return textwrap.fill(text, width=88)


def _override(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, as in n=18, not {text!r}")
    return key.strip(), value.strip()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resdsl", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description=_wrap("Compile networks written like Table 1 of 'Deep Residual Learning for "
                    "Image Recognition' (.arch files): shapes, parameters and multiply-adds."))
    parser.add_argument("--version", action="version", version=f"resdsl {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--set", dest="overrides", action="append", type=_override, default=[],
                        metavar="NAME=VALUE",
                        help="override a parameter (n=18) or a setting (shortcut=A, "
                             "input=3x32x32, stride_on=3x3, bias=on, bn=off, classes=10); "
                             "repeatable")
    common.add_argument("--limit", dest="limits", action="append", type=_override, default=[],
                        metavar="NAME=VALUE",
                        help="raise or lower a safety limit (listed below), e.g. "
                             "layers=1000000 or memory=64GiB; repeatable")
    common.add_argument("--dump-ir", action="store_true",
                        help="print the IR to stderr after elaboration and after each pass")

    flops = _command(
        commands, common, "flops", "",
        help="params and multiply-adds per stage, Table 1 style",
        description=("Print params and multiply-adds per stage and in total, one column pair "
                     "per file, like the paper's Table 1. By default the work column counts "
                     "MACs: multiply-adds of conv and fc layers only, which is what the paper "
                     "calls FLOPs (ResNet-50: 3.8 x 10^9)."))
    flops.add_argument("files", nargs="+", metavar="FILE", help=".arch files, side by side")
    flops.add_argument("--flops", action="store_true",
                       help="report FLOPs = 2 x MACs instead of MACs")
    flops.add_argument("--all-ops", action="store_true",
                       help="also count BN, ReLU and add (one op per element) and pooling "
                            "(one per window element)")
    flops.add_argument("--json", action="store_true",
                       help="one JSON object per file and line, with integer params, macs, "
                            "flops and other_ops, input and output shapes, and stages")
    flops.add_argument("-o", "--output", metavar="OUT",
                       help="write the table or JSON here (whole or not at all)")

    check = _command(
        commands, common, "check", "",
        help="validate files: every layer's output shape, or diagnostics as JSON",
        description=("Validate .arch files through every pass and print each node of the "
                     "IR with its output shape (C x H x W), params and MACs; errors and "
                     "warnings go to stderr. With --json, print instead one JSON list of "
                     "every file's errors and warnings, each an object with file, line, "
                     "column, end, severity, code, message and hint, for editors and CI. "
                     "The exit code is 1 when any file has an error."))
    check.add_argument("files", nargs="+", metavar="FILE",
                       help=".arch files, each checked even when one before it fails")
    check.add_argument("--json", action="store_true",
                       help="diagnostics as a JSON list (codes are listed in the README)")
    check.add_argument("-o", "--output", metavar="OUT",
                       help="write the report or JSON here (whole or not at all)")

    compile_ = _command(
        commands, common, "compile", COMPILE_EPILOG,
        help="write a standalone PyTorch module",
        description=("Write the network as a readable PyTorch file that imports only torch: "
                     "one class per kind of residual unit and one for the network, whose "
                     "forward reads like the paper's figures. Without -o the source goes to "
                     "stdout. With --check, build the module on --device, run one forward "
                     "and backward pass, and report shapes, params and peak memory."))
    compile_.add_argument("file", metavar="FILE")
    compile_.add_argument("-o", "--output", metavar="OUT.py",
                          help="write the source here (whole or not at all)")
    compile_.add_argument("--naming", choices=("arch", "torchvision"), default="arch",
                          help="module names: the .arch scopes (conv3_x.0.conv1, the default) "
                               "or torchvision's ResNet names (layer2.0.conv1), whose state "
                               "dicts then load either way")
    compile_.add_argument("--fold-bn", action="store_true",
                          help="inference: fold each BN into its conv; the class gains "
                               "from_unfolded(state_dict) to take trained weights")
    compile_.add_argument("--check", action="store_true",
                          help="build, run one forward and backward pass on --device, report")
    compile_.add_argument("--device", default="cpu",
                          help="for --check: cpu, cuda or cuda:N (default cpu)")
    compile_.add_argument("--batch", type=_positive, default=2, metavar="N",
                          help="for --check: the batch size (default 2)")
    render = _command(
        commands, common, "render", RENDER_EPILOG,
        help="draw networks side by side (the paper's Fig. 3)",
        description=("Draw networks side by side with graphviz, one box per layer as the "
                     "paper labels them, rows aligned by output size, and shortcuts as "
                     "arcs beside each residual column: solid for the identity, dotted "
                     "where the shortcut increases dimensions. With no FILE, draw the "
                     "paper's Figure 3 (VGG-19, 34-layer plain, 34-layer residual). The "
                     "format follows the extension of -o (.svg, .png, .pdf, .dot); "
                     "without -o the DOT source goes to stdout."))
    render.add_argument("files", nargs="*", metavar="FILE", help=".arch files, left to right")
    render.add_argument("-o", "--output", metavar="OUT",
                        help="the figure: OUT.svg, OUT.png, OUT.pdf or OUT.dot")
    render.add_argument("--collapse", action="store_true",
                        help="fold each run of identical residual units into one box "
                             "marked x N (ResNet-152 fits on a page)")
    render.add_argument("--shapes", action="store_true",
                        help="label the edges with tensor shapes (C x H x W)")
    render.add_argument("--rankdir", choices=("TB", "LR"), default="TB",
                        help="columns top to bottom (TB, the default, as in the paper) or "
                             "rows left to right (LR)")
    _train_parser(commands, common)
    return parser


def _train_parser(commands, common) -> None:
    train = _command(
        commands, common, "train", TRAIN_EPILOG,
        help="train a network with the paper's recipe",
        description=(
            "Train the network with the paper's recipe: SGD, momentum 0.9, weight decay "
            "1e-4, learning rate 0.1 divided by 10 at the milestones; CIFAR-sized inputs get "
            "sec. 4.2's settings (batch 128, milestones 32k and 48k, 64k steps, 4-pixel pad, "
            "random crop and flip, per-pixel mean; a 0.01 warm-up until the training error "
            "is under 80% for 110 layers or more), 224-pixel inputs sec. 3.4's (batch 256, "
            "scale augmentation in [256, 480], random 224 crop and flip). Runs on one CPU or "
            "GPU, or under torchrun with DistributedDataParallel. Writes metrics.jsonl and "
            "checkpoint.pt (atomically) to --out; Ctrl-C saves a checkpoint and stops."))
    train.add_argument("file", metavar="FILE")
    train.add_argument("--data", required=True, metavar="SOURCE",
                       help="cifar10:DIR (the python batches of cifar-10-python.tar.gz), "
                            "imagefolder:DIR (DIR/train/<class>/*.jpg and DIR/val/...), "
                            "or synthetic (random images, for smoke runs)")
    train.add_argument("--out", required=True, metavar="DIR",
                       help="where metrics.jsonl and checkpoint.pt go")
    train.add_argument("--resume", action="store_true",
                       help="continue from DIR/checkpoint.pt exactly where it stopped")
    recipe = train.add_argument_group("the recipe (defaults as in the paper)")
    recipe.add_argument("--steps", type=_positive, help="training steps (64000 on CIFAR)")
    recipe.add_argument("--batch", type=_positive, help="global batch (128 CIFAR, 256 ImageNet)")
    recipe.add_argument("--lr", type=float, help="learning rate (0.1)")
    recipe.add_argument("--milestones", type=_steps, metavar="S1,S2",
                        help="steps at which the rate is divided by 10 (32000,48000 on CIFAR)")
    recipe.add_argument("--momentum", type=float)
    recipe.add_argument("--weight-decay", type=float)
    recipe.add_argument("--warmup-lr", type=float, metavar="LR",
                        help="warm up at LR until the training error is under 80%% "
                             "(default 0.01 for CIFAR nets of 110+ layers, else none)")
    recipe.add_argument("--no-warmup", action="store_true")
    run = train.add_argument_group("running")
    run.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, "
                                                      "cuda or cuda:N")
    run.add_argument("--amp", choices=("bf16", "fp16"), help="autocast to this dtype")
    run.add_argument("--channels-last", action="store_true")
    run.add_argument("--compile", action="store_true", help="torch.compile the model")
    run.add_argument("--workers", type=int, default=None,
                     help="data loader processes (0 for in-memory data, 4 for images)")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--log-every", type=_positive, default=20, metavar="N",
                     help="sync, log and check for Ctrl-C every N steps (20)")
    run.add_argument("--eval-every", type=_positive, default=2000, metavar="N")
    run.add_argument("--checkpoint-every", type=_positive, default=1000, metavar="N")
    run.add_argument("--synthetic-size", type=_positive, default=1024, metavar="N",
                     help="images in the synthetic source (7/8 train, 1/8 test)")
    run.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")


def _steps(text: str) -> tuple[int, ...]:
    try:
        steps = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected steps such as 32000,48000, not {text!r}")
    return steps


TRAIN_EPILOG = """

examples:
  resdsl train archs/cifar-resnet.arch --set n=9 --data cifar10:cifar-10-batches-py --out runs/resnet56
  torchrun --nproc_per_node 4 -m resdsl train archs/resnet50-v1.5.arch --data imagefolder:imagenet --out runs/r50 --amp bf16 --channels-last
  resdsl train archs/cifar-resnet.arch --data synthetic --steps 200 --out /tmp/smoke"""


RENDER_EPILOG = """

examples:
  resdsl render -o figure3.png
  resdsl render archs/resnet152.arch --collapse -o resnet152.svg
  resdsl render archs/cifar-plain.arch archs/cifar-resnet.arch --set n=9 --shapes -o cifar56.pdf"""

COMPILE_EPILOG = """

examples:
  resdsl compile archs/resnet34.arch -o resnet34.py
  resdsl compile archs/cifar-resnet.arch --set n=18 -o resnet110.py
  resdsl compile archs/resnet50-v1.5.arch --naming torchvision --check --device cuda"""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {text!r}")
    return value


def _version() -> str:
    from resdsl import __version__
    return __version__


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        with limits(**dict(args.limits)):
            return _run(args)
    except ResdslError as error:
        print(error.format(), file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `resdsl flops ... | head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_INPUT
    except Exception as error:  # a bug: say so plainly, keep the traceback for debugging
        if os.environ.get("RESDSL_DEBUG"):
            traceback.print_exc()
        print(f"resdsl: internal error: {type(error).__name__}: {error}\n"
              "this is a bug in resdsl; rerun with RESDSL_DEBUG=1 and report the traceback",
              file=sys.stderr)
        return EXIT_INTERNAL


def _run(args) -> int:
    from resdsl.api import build
    from resdsl.backends.summary import summarize

    overrides = dict(args.overrides)
    dump_to = (lambda text: print(text, file=sys.stderr)) if args.dump_ir else None
    if args.command == "train":
        return _train(args, overrides)
    if args.command == "render":
        return _render(args, overrides)
    if args.command == "compile":
        return _compile(args, build(args.file, dump_to=dump_to, **overrides))
    if args.command == "check":
        return _check(args, overrides, dump_to)
    summaries = [summarize(build(path, dump_to=dump_to, **overrides)) for path in args.files]
    if args.json:
        text = "".join(json.dumps(s.to_dict(), separators=(",", ":")) + "\n" for s in summaries)
    else:
        from resdsl.backends.table import format_table
        metric = ("flops" if args.flops else "macs") + ("+ops" if args.all_ops else "")
        text = format_table(summaries, metric) + "\n"
    _emit(text, args.output)
    return 0


def _check(args, overrides, dump_to) -> int:
    """Every file, even after one fails; diagnostics as text on stderr or as one JSON list."""
    from resdsl.api import build
    from resdsl.backends.summary import summarize

    reports, diagnostics, failed = [], [], False
    for path in args.files:
        try:
            graph = build(path, dump_to=dump_to, **overrides)
        except ResdslError as error:
            found, failed = [error.diagnostic], True
        else:
            found = graph.graph["warnings"]
            reports.append(_format_check(graph, summarize(graph)) + "\n")
        diagnostics += [d.to_dict(file=str(path)) for d in found]
        if not args.json:
            for diagnostic in found:
                print(diagnostic.format(), file=sys.stderr)
    text = json.dumps(diagnostics, indent=2) + "\n" if args.json else "".join(reports)
    if text:
        _emit(text, args.output)
    return EXIT_INPUT if failed else 0


def _emit(text: str, output: str | None) -> None:
    """A command's result: to stdout, or written whole to `output`."""
    if output:
        from resdsl.output import write_atomic

        write_atomic(output, text)
        print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def _train(args, overrides) -> int:
    from resdsl.api import count
    from resdsl.training.loop import EXIT_INTERRUPTED, TrainConfig, train
    from resdsl.training.recipe import default_recipe

    summary = count(args.file, **overrides)
    recipe = default_recipe(summary.input[-1], summary.layers)
    for name in ("steps", "batch", "lr", "milestones", "momentum", "weight_decay"):
        if getattr(args, name) is not None:
            setattr(recipe, name, getattr(args, name))
    if args.warmup_lr is not None:
        recipe.warmup_lr = args.warmup_lr
    if args.no_warmup:
        recipe.warmup_lr = None
    workers = args.workers if args.workers is not None else (
        4 if args.data.startswith("imagefolder") else 0)
    result = train(TrainConfig(
        arch=args.file, recipe=recipe, data=args.data, out=Path(args.out), params=overrides,
        eval_every=args.eval_every, checkpoint_every=args.checkpoint_every,
        log_every=args.log_every, seed=args.seed, device=args.device, amp=args.amp,
        channels_last=args.channels_last, compile=args.compile, workers=workers,
        resume=args.resume, synthetic_size=args.synthetic_size,
        progress=not args.no_progress))
    return EXIT_INTERRUPTED if result.interrupted else 0


def _render(args, overrides) -> int:
    from resdsl.api import render
    from resdsl.backends.figure.draw import FORMATS, write

    if args.output and Path(args.output).suffix.lower().lstrip(".") not in FORMATS + ("gv",):
        print(f"resdsl render: error: cannot tell the format of {args.output}: "
              "use .svg, .png, .pdf or .dot", file=sys.stderr)
        return EXIT_USAGE
    figure = render(*args.files, collapse=args.collapse, shapes=args.shapes,
                    rankdir=args.rankdir, **overrides)
    if args.output:
        write(figure, args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(figure.source)
    return 0


def _compile(args, graph) -> int:
    from resdsl.backends.pytorch.runtime import generate, import_source

    text, plan = generate(graph, naming=args.naming, fold_bn=args.fold_bn)
    if args.output:
        from resdsl.output import write_atomic

        write_atomic(args.output, text)
        print(f"wrote {args.output}: class {plan.class_name}, {plan.params:,} params",
              file=sys.stderr)
    if not args.check:
        if not args.output:
            sys.stdout.write(text)
        return 0
    from resdsl.backends.pytorch import memory
    from resdsl.backends.pytorch.check import check, resolve_device

    device = resolve_device(args.device)
    need = memory.require(graph, device, batch=args.batch)
    model = getattr(import_source(text), plan.class_name)()
    report = check(model, plan, device, args.batch, need.describe())
    print(report.format())
    return 0 if report.ok else EXIT_INTERNAL


def _format_check(graph, summary) -> str:
    import networkx as nx

    rows = [("node", "op", "output (CxHxW)", "params", "MACs")]
    for node in nx.topological_sort(graph):
        a = graph.nodes[node]
        rows.append((node, a["op"], format_shape(a["shape"]), f"{a['params']:,}",
                     f"{a['macs']:,}"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [f"{summary.network} ({summary.file}): input {format_shape(summary.input)}, "
             f"shortcut {summary.shortcut}, stride on {summary.stride_on}"]
    for r in rows:
        lines.append(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  "
                     f"{r[3]:>{widths[3]}}  {r[4]:>{widths[4]}}")
    lines.append(f"ok: {summary.params:,} params, {summary.macs:,} MACs "
                 "(multiply-adds of conv and fc layers)")
    return "\n".join(lines)
