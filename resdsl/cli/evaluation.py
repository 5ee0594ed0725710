"""`resdsl eval` (the paper's testing: centre crop, 10-crop, multi-scale, ensembles) and
`resdsl responses` (Figure 7)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from resdsl.cli.common import Command, positive, whole

TEST_CHOICES = ("center", "10-crop", "multi-scale")


def _tests(text: str) -> tuple[str, ...]:
    tests = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [test for test in tests if test not in TEST_CHOICES]
    if unknown or not tests:
        raise argparse.ArgumentTypeError(
            f"expected tests from {', '.join(TEST_CHOICES)}, comma-separated, not {text!r}")
    return tests


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(positive(part) for part in text.split(","))


def _running(parser) -> None:
    """What eval and responses share: the data and where it runs."""
    parser.add_argument("--data", required=True, metavar="SOURCE",
                        help="the test split of a source as `resdsl train --data` takes it: "
                             "cifar10:DIR, fashion-mnist[:DIR], imagefolder:DIR (DIR/val; "
                             "DIR/train too for the mean that training subtracts)")
    parser.add_argument("--images", type=positive, metavar="N",
                        help="only the first N test images (default: all)")
    parser.add_argument("--batch", type=positive, default=100, metavar="N",
                        help="images per forward pass (100)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--workers", type=whole, default=None,
                        help="image decoding processes (0 for in-memory data, 4 for images)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _eval_arguments(parser) -> None:
    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="a `resdsl train` --out folder (its newest intact checkpoint) "
                             "or a checkpoint file; several make an ensemble. Or one .arch "
                             "file (or bundled name) with --weights")
    parser.add_argument("--weights", action="append", default=[], metavar="FILE",
                        help="a state-dict file for the .arch file (torch.save of "
                             "state_dict()); repeat for an ensemble")
    parser.add_argument("--naming", choices=("arch", "torchvision"), default="arch",
                        help="the module names in --weights: resdsl's (arch) or "
                             "torchvision's ResNet (layer1.0.conv1.weight, ...)")
    parser.add_argument("--normalize", choices=("mean", "imagenet"),
                        help="subtract the training data's per-pixel mean, as `resdsl train` "
                             "does (default), or torchvision's ImageNet mean and std "
                             "(default with --naming torchvision)")
    parser.add_argument("--test", type=_tests, default=("center",), metavar="TESTS",
                        help="comma-separated: center (the default), 10-crop, multi-scale")
    parser.add_argument("--scales", type=_sizes, metavar="S1,S2,...",
                        help="the shorter sides for multi-scale testing (224,256,384,480,640 "
                             "for 224 networks; the same ratios for others: 32,37,55,69,91)")
    _running(parser)


def _members(args, device):
    from resdsl.bundled import find_arch
    from resdsl.errors import ResdslError
    from resdsl.evaluation import members

    if args.weights:
        if len(args.models) != 1:
            raise ResdslError("--weights goes with exactly one .arch file, not "
                              f"{len(args.models)} models", code="E705")
        normalize = args.normalize or ("imagenet" if args.naming == "torchvision" else "mean")
        arch = find_arch(args.models[0])
        return [members.from_weights(arch, dict(args.overrides), weights, args.naming,
                                     normalize, device) for weights in args.weights]
    for model in args.models:
        if model.endswith(".arch") and not Path(model).is_dir():
            raise ResdslError(f"{model} is a network, not trained weights",
                              hint="give its weights with --weights FILE, or a run folder",
                              code="E705")
    return [members.from_run(model, device) for model in args.models]


def _open_test(args, member, with_train: bool):
    from resdsl.training.data import open_source

    summary = member.summary
    _, test = open_source(args.data, summary.input, summary.output[0], 1024, 0, with_train)
    return test.head(args.images) if args.images else test


def _workers(args) -> int:
    if args.workers is not None:
        return args.workers
    return 4 if args.data.startswith("imagefolder") else 0


def _eval(args) -> int:
    from resdsl.backends.pytorch.devices import resolve_device
    from resdsl.evaluation.members import check_alike
    from resdsl.evaluation.score import evaluate
    from resdsl.evaluation.views import default_scales

    device = resolve_device(args.device)
    members = _members(args, device)
    check_alike(members)
    test = _open_test(args, members[0],
                      with_train=any(member.normalize == "mean" for member in members))
    scales = args.scales or default_scales(test.crop)
    rows = evaluate(members, test, args.test, scales, args.batch, device, _workers(args),
                    progress=not args.no_progress)
    views = {"center": 1, "10-crop": 10, "multi-scale": len(scales)}
    print(f"{rows[0].images:,} test images of {args.data}; errors in %; scores averaged "
          "over views" + (" and members" if len(members) > 1 else ""))
    print("| test | views per image | model | top-1 error | top-5 error |\n"
          "|---|---:|---|---:|---:|")
    for row in rows:
        test_name = row.test + (f" {','.join(map(str, scales))}"
                                if row.test == "multi-scale" else "")
        print(f"| {test_name} | {views[row.test]} | {row.who} | {100 * row.top1:.2f} "
              f"| {100 * row.top5:.2f} |")
    return 0


EVAL = Command(
    "eval", "test trained networks as the paper does: center, 10-crop, multi-scale, ensembles",
    "Report the top-1 and top-5 error of trained networks on a source's test split, as "
    "the paper tests them: the centre crop (what training reports), 10-crop testing "
    "(sec. 3.4: four corners and the centre, and their mirror images) and fully-"
    "convolutional multi-scale testing (the whole image at several shorter sides through "
    "the network, whose final pool is global; scores averaged). Several models make an "
    "ensemble: their softmax scores are averaged, and each model's own errors are shown "
    "beside the ensemble's. Models are `resdsl train` run folders or checkpoint files, or "
    "one .arch file with --weights state-dict files, such as torchvision's (--naming "
    "torchvision).",
    ("resdsl eval runs/resnet56 --data cifar10:cifar-10-batches-py --test center,10-crop",
     "resdsl eval runs/resnet20 runs/resnet32 runs/resnet44 --data fashion-mnist",
     "resdsl eval archs/resnet50-v1.5.arch --weights resnet50.pth --naming torchvision --data imagefolder:imagenet --test center,10-crop,multi-scale"),
    _eval_arguments, _eval)


def _responses_arguments(parser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="`resdsl train` --out folders or checkpoint files; each is "
                             "labelled by its folder's name (plain-20, ResNet-56, ...)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="the figure: OUT.png, OUT.pdf or OUT.svg")
    _running(parser)


def _responses(args) -> int:
    from resdsl.backends.pytorch.devices import resolve_device
    from resdsl.evaluation import members, responses
    from resdsl.training.curves import figure_format

    figure_format(args.output)
    device = resolve_device(args.device)
    measured = {}
    for run in args.runs:
        member = members.from_run(run, device)
        path = Path(run)
        label = (path if path.is_dir() else path.parent).resolve().name
        measured[label] = responses.measure(member, _open_test(args, member, True), args.batch,
                                            device, progress=not args.no_progress)
    responses.draw(measured, args.output)
    print("| network | 3x3 layers | mean std | largest | smallest |\n|---|---:|---:|---:|---:|")
    for label, stds in measured.items():
        print(f"| {label} | {len(stds)} | {sum(stds) / len(stds):.3f} | {max(stds):.3f} "
              f"| {min(stds):.3f} |")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


RESPONSES = Command(
    "responses", "the std of each 3x3 layer's response, plain against residual (Fig. 7)",
    "Measure, for trained networks, the standard deviation of each 3x3 layer's response "
    "(its output after BN, before the ReLU or the addition: all channels and positions) "
    "over a source's test images, and draw it by layer and sorted by magnitude, as the "
    "paper's Figure 7 does. Needs matplotlib (pip install 'resdsl[plot]').",
    ("resdsl responses runs/fig6/plain-20 runs/fig6/plain-56 runs/fig6/ResNet-20 runs/fig6/ResNet-56 --data fashion-mnist -o figure7.png",),
    _responses_arguments, _responses, network_options=False)
