"""`resdsl compile`: a network as standalone PyTorch source or as an ONNX model, and
`--check`, which builds it on a device and runs it once."""

from __future__ import annotations

import sys
from pathlib import Path

from resdsl.cli.common import EXIT_INTERNAL, EXIT_USAGE, Command, build, positive

FORMATS = {".py": "PyTorch source", ".onnx": "ONNX"}


def _arguments(parser) -> None:
    from resdsl.backends.pytorch.naming import NAMINGS
    from resdsl.backends.pytorch.onnx import OPSET

    parser.add_argument("file", metavar="FILE", help="an .arch file or a bundled network name")
    parser.add_argument("-o", "--output", metavar="OUT.py|OUT.onnx",
                        help="write the network here (whole or not at all); the extension "
                             f"picks the format: .py, PyTorch source; .onnx, an ONNX model "
                             f"(opset {OPSET}, dynamic batch, input 'image', output 'logits', "
                             "in eval mode; needs `pip install 'resdsl[onnx]'`)")
    parser.add_argument("--naming", choices=NAMINGS, default="arch",
                        help="module names: the .arch scopes (conv3_x.0.conv1, the default), "
                             "torchvision's ResNet names (layer2.0.conv1) or timm's ResNet "
                             "and ResNetV2 names (layer2.0.se.fc1, stages.1.blocks.0.norm1), "
                             "whose state dicts then load either way")
    parser.add_argument("--fold-bn", action="store_true",
                        help="inference: fold each BN into its conv; the class gains "
                             "from_unfolded(state_dict) to take trained weights")
    parser.add_argument("--check", action="store_true",
                        help="build the module on --device, run one forward and backward "
                             "pass, and report shapes, params, time and memory")
    parser.add_argument("--device", default="cpu",
                        help="for --check: auto, cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--batch", type=positive, default=2, metavar="N",
                        help="for --check: the batch size (default 2)")


def _compile(args) -> int:
    from resdsl.backends.pytorch.runtime import generate, import_source
    from resdsl.output import write_atomic

    suffix = Path(args.output).suffix.lower() if args.output else ".py"
    if suffix not in FORMATS:
        print(f"resdsl compile: error: cannot tell the format of {args.output}: use .py "
              "(PyTorch source) or .onnx", file=sys.stderr)
        return EXIT_USAGE
    graph = build(args.file, args)
    text, plan = generate(graph, naming=args.naming, fold_bn=args.fold_bn)
    if suffix == ".onnx":
        from resdsl.backends.pytorch.onnx import OPSET, export

        write_atomic(args.output, export(getattr(import_source(text), plan.class_name), plan))
        print(f"wrote {args.output}: ONNX opset {OPSET}, class {plan.class_name}, "
              f"{plan.params:,} params", file=sys.stderr)
    elif args.output:
        write_atomic(args.output, text)
        print(f"wrote {args.output}: class {plan.class_name}, {plan.params:,} params",
              file=sys.stderr)
    elif not args.check:
        sys.stdout.write(text)
    if not args.check:
        return 0
    from resdsl.backends.pytorch import memory
    from resdsl.backends.pytorch.check import check
    from resdsl.backends.pytorch.devices import resolve_device

    device = resolve_device(args.device)
    need = memory.require(graph, device, batch=args.batch, training=True)  # a step
    report = check(getattr(import_source(text), plan.class_name), plan, device, args.batch,
                   need.describe())
    print(report.format())
    return 0 if report.ok else EXIT_INTERNAL


COMPILE = Command(
    "compile", "write a standalone PyTorch module, or an ONNX model",
    "Write the network as a readable PyTorch file that imports only torch: one class per "
    "kind of residual unit and one for the network, whose forward reads like the paper's "
    "figures. Without -o the source goes to stdout; -o OUT.onnx writes an ONNX model for "
    "Netron, onnxruntime or TensorRT instead. With --check, build the module on --device, "
    "run one forward and backward pass, and report shapes, params and memory.",
    ("resdsl compile archs/resnet34.arch -o resnet34.py",
     "resdsl compile archs/cifar-resnet.arch --set n=18 -o resnet110.py",
     "resdsl compile resnet50 -o resnet50.onnx",
     "resdsl compile archs/resnet50-v1.5.arch --naming torchvision --check --device cuda"),
    _arguments, _compile)
