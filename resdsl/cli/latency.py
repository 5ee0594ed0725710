"""`resdsl latency`: the roofline estimate of a forward pass per stage (and layer), on a
named GPU by its datasheet or on this machine's CPU as measured; `--measure` times the
emitted module's stages beside it. Torch is imported only for `cpu` and `--measure`."""

from __future__ import annotations

import json

from resdsl.cli.common import Command, build, emit, positive


def _arguments(parser) -> None:
    from resdsl.backends.latency import KNOWN

    parser.add_argument("file", metavar="FILE", help="an .arch file or a bundled network name")
    parser.add_argument("--device", default="cpu", metavar="|".join(KNOWN),
                        help="the device whose peaks the estimate divides by: cpu (this "
                             "machine, measured in a few hundred ms) or a GPU by its "
                             "datasheet (default: cpu)")
    parser.add_argument("--batch", type=positive, default=1, metavar="N",
                        help="images per forward pass (default: 1)")
    parser.add_argument("--amp", choices=("bf16", "fp16"),
                        help="half precision: its peak, and 2 bytes an element moved")
    parser.add_argument("--measure", action="store_true",
                        help="also time each stage of the emitted module on the device (the "
                             "CPU, or this machine's GPU when it is the one named) and print "
                             "measured / estimate")
    parser.add_argument("--repeats", type=positive, default=10, metavar="N",
                        help="timed forwards for --measure, after 3 warm-up (default: 10)")
    parser.add_argument("--threads", type=positive, metavar="N",
                        help="torch's CPU threads for the calibration and --measure "
                             "(default: torch's own; fewer can be faster on a busy machine)")
    parser.add_argument("--layers", action="store_true",
                        help="a row per layer under its stage's")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object: seconds, bytes, FLOPs and FLOP/s for the whole "
                             "batch, per stage and per layer")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="write the table or JSON here (whole or not at all)")


def _latency(args) -> int:
    from resdsl.backends.latency import latency_of

    report = latency_of(build(args.file, args), args.device, args.batch, args.amp,
                        args.measure, args.repeats, args.threads)
    if args.json:
        text = json.dumps(report.to_dict(), separators=(",", ":")) + "\n"
    else:
        text = report.format(show_layers=args.layers) + "\n"
    emit(text, args.output)
    return 0


LATENCY = Command(
    "latency", "a roofline estimate of a forward pass per stage, optionally measured",
    "Estimate how long one forward pass takes on a device, per stage (and with --layers per "
    "layer), by the roofline model: each layer takes the longer of its FLOPs (2 x MACs x "
    "batch) at the device's peak and its bytes moved (inputs read, output written, weights "
    "read) at the device's memory bandwidth. GPUs are taken from their datasheets; cpu is "
    "this machine, measured. With --measure, each stage of the emitted module is also timed "
    "on the device, beside the estimate, with their ratio.",
    ("resdsl latency resnet50 --device h100 --batch 64 --amp bf16",
     "resdsl latency cifar-resnet --batch 2 --measure"),
    _arguments, _latency)
