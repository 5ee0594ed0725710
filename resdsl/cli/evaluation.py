"""`resdsl eval` (the paper's testing: centre crop, 10-crop, multi-scale, ensembles) and
`resdsl responses` (Figure 7)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from resdsl.cli.common import Command, loader_workers, named_network, positive, whole

TEST_CHOICES = ("center", "10-crop", "multi-scale")


def _tests(text: str) -> tuple[str, ...]:
    tests = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
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
                             "DIR/train too for the mean that training subtracts), synthetic")
    parser.add_argument("--images", type=positive, metavar="N",
                        help="only the first N test images (default: all)")
    parser.add_argument("--batch", type=positive, default=100, metavar="N",
                        help="images per forward pass (100)")
    parser.add_argument("--device", default="auto",
                        help="auto (the default: a GPU when there is one), cpu, cuda or cuda:N")
    parser.add_argument("--workers", type=whole, default=None,
                        help="image decoding processes (0 for in-memory data, 4 for images)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _eval_arguments(parser) -> None:
    from resdsl.backends.pytorch.naming import NAMINGS

    parser.add_argument("models", nargs="+", metavar="MODEL",
                        help="a `resdsl train` --out folder (its newest intact checkpoint) "
                             "or a checkpoint file; several make an ensemble. Or one .arch "
                             "file (or bundled name) with --weights")
    parser.add_argument("--weights", action="append", default=[], metavar="FILE",
                        help="a state-dict file for the .arch file (torch.save of "
                             "state_dict()); repeat for an ensemble")
    parser.add_argument("--naming", choices=NAMINGS, default="arch",
                        help="the module names in --weights: resdsl's (arch), torchvision's "
                             "ResNet (layer1.0.conv1.weight, ...) or timm's")
    parser.add_argument("--normalize", choices=("mean", "imagenet"),
                        help="subtract the training data's per-pixel mean, as `resdsl train` "
                             "does (default), or torchvision's ImageNet mean and std "
                             "(default with --naming torchvision or timm)")
    parser.add_argument("--test", type=_tests, default=("center",), metavar="TESTS",
                        help="comma-separated: center (the default), 10-crop, multi-scale")
    parser.add_argument("--scales", type=_sizes, metavar="S1,S2,...",
                        help="the shorter sides for multi-scale testing (224,256,384,480,640 "
                             "for 224 networks; the same ratios for others: 32,37,55,69,91)")
    _running(parser)


def _members(args, device):
    from resdsl.errors import ResdslError
    from resdsl.evaluation import members

    if args.weights:
        if len(args.models) != 1 or _is_run(args.models[0]):
            raise ResdslError("--weights goes with one .arch file (or bundled name), not "
                              + " ".join(args.models), hint="a run folder or checkpoint "
                              "brings its own network and weights", code="E713")
        normalize = args.normalize or ("imagenet" if args.naming != "arch" else "mean")
        arch, params = named_network(args.models[0], args)
        return [members.from_weights(arch, params, weights, args.naming,
                                     normalize, device) for weights in args.weights]
    if args.overrides or args.normalize or args.naming != "arch":
        raise ResdslError("--set, --naming and --normalize apply to an .arch file with "
                          "--weights", hint="a run folder or checkpoint brings its own "
                          "network (file and --set values) and its training data's mean",
                          code="E713")
    for model in args.models:
        if model.endswith(".arch") and not Path(model).is_dir():
            raise ResdslError(f"{model} is a network, not trained weights",
                              hint="give its weights with --weights FILE, or a run folder",
                              code="E705")
    return [members.from_run(model, device) for model in args.models]


def _is_run(model: str) -> bool:
    return Path(model).is_dir() or model.endswith(".pt")


def _open_test(args, member, with_train: bool):
    from resdsl.training.data import fit_classes, open_source

    summary = member.summary
    _, test = open_source(args.data, summary.input, summary.output[0], 1024, 0, with_train)
    fit_classes(test, summary.output[0], args.data, member.name, code="E713")
    return test.head(args.images) if args.images else test


def _check_scales(args, crop: int) -> tuple[int, ...]:
    """The multi-scale sizes: the paper's (or --scales), up to 4 times its largest."""
    from resdsl.errors import ResdslError
    from resdsl.evaluation.views import default_scales

    if args.scales and "multi-scale" not in args.test:
        raise ResdslError("--scales is for --test multi-scale", code="E713")
    largest = 4 * max(default_scales(crop))
    if args.scales and max(args.scales) > largest:
        raise ResdslError(f"--scales {max(args.scales)} is more than 4 times the paper's "
                          f"largest scale for a {crop}-pixel network", hint="scales up to "
                          f"{largest} are accepted", code="E713")
    return args.scales or default_scales(crop)


def _eval(args) -> int:
    from resdsl.backends.pytorch.devices import resolve_device
    from resdsl.evaluation.members import check_alike
    from resdsl.evaluation.score import evaluate

    device = resolve_device(args.device)
    members = _members(args, device)
    check_alike(members)
    test = _open_test(args, members[0],
                      with_train=any(member.normalize == "mean" for member in members))
    scales = _check_scales(args, test.crop)
    rows = evaluate(members, test, args.test, scales, args.batch, device, loader_workers(args),
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
                             "labelled by its folder's name (plain-20, ResNet-56, ...), and "
                             "drawn dashed when that name starts with 'plain'")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="the figure: OUT.png, OUT.pdf or OUT.svg")
    _running(parser)


def _responses(args) -> int:
    from resdsl.backends.pytorch.devices import resolve_device
    from resdsl.errors import ResdslError, Span
    from resdsl.evaluation import members, responses
    from resdsl.training.curves import figure_format

    figure_format(args.output)
    if not Path(args.output).resolve().parent.is_dir():
        raise ResdslError(f"cannot write {args.output}: its folder does not exist",
                          Span(args.output, 0, 0), code="E701")
    labels = [(Path(run) if Path(run).is_dir() else Path(run).parent).resolve().name
              for run in args.runs]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise ResdslError(f"more than one run is labelled {', '.join(twice)}: each is "
                          "labelled by its folder's name", hint="give runs in folders of "
                          "their own names (plain-20, ResNet-20, ...)", code="E713")
    device = resolve_device(args.device)
    measured, tests = {}, {}  # the test data, read once for each input shape and classes
    for run, label in zip(args.runs, labels):
        member = members.from_run(run, device)
        shape = (tuple(member.summary.input), tuple(member.summary.output))
        if shape not in tests:
            tests[shape] = _open_test(args, member, True)
        test = tests[shape]
        measured[label] = responses.measure(member, test, args.batch, device,
                                            loader_workers(args), progress=not args.no_progress)
    responses.draw(measured, args.output)
    print(f"{len(test):,} test images of {args.data}; a response's std is over every channel "
          "and position")
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
