"""`resdsl train`: the paper's recipe on any network, on one device or under torchrun."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from resdsl.cli.common import (EXIT_INTERRUPTED, Command, ascii_digits, build, loader_workers,
                               named_network, positive, real, whole)


def _steps(text: str) -> tuple[int, ...]:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not all(ascii_digits(part) for part in parts):
        raise argparse.ArgumentTypeError(f"expected steps such as 32000,48000, not {text!r}")
    return tuple(int(part) for part in parts)


def _folder(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("give a folder, not an empty string")
    return text


def _arguments(train) -> None:
    train.add_argument("file", metavar="FILE", help="an .arch file or a bundled network name")
    train.add_argument("--data", required=True, metavar="SOURCE",
                       help="cifar10:DIR (the python batches of cifar-10-python.tar.gz), "
                            "fashion-mnist[:DIR] (its four idx files; without DIR, where "
                            "Debian's dataset-fashion-mnist puts them), imagefolder:DIR "
                            "(DIR/train/<class>/*.jpg and DIR/val/...), or synthetic "
                            "(random images, for smoke runs)")
    train.add_argument("--out", required=True, metavar="DIR", type=_folder,
                       help="the run's folder: metrics.jsonl and checkpoint-STEP.pt go here; "
                            "one run at a time")
    start = train.add_mutually_exclusive_group()
    start.add_argument("--resume", nargs="?", const=True, choices=("auto",), default=False,
                       help="continue from the newest intact checkpoint in DIR exactly where "
                            "it stopped; --resume auto does so when DIR has one and starts "
                            "afresh otherwise (for torchrun --max-restarts)")
    start.add_argument("--overwrite", action="store_true",
                       help="delete the records of an earlier run in DIR and start afresh")
    recipe = train.add_argument_group("the recipe (defaults as in the paper)")
    recipe.add_argument("--steps", type=positive, help="training steps (64000 on CIFAR)")
    recipe.add_argument("--batch", type=positive, help="global batch (128 CIFAR, 256 ImageNet)")
    recipe.add_argument("--lr", type=real, help="learning rate (0.1)")
    recipe.add_argument("--milestones", type=_steps, metavar="S1,S2",
                        help="steps at which the rate is divided by 10 (32000,48000 on CIFAR)")
    recipe.add_argument("--momentum", type=real)
    recipe.add_argument("--weight-decay", type=real)
    recipe.add_argument("--warmup-lr", type=real, metavar="LR",
                        help="warm up at LR until the training error is under 80%% "
                             "(default 0.01 for CIFAR nets of 110+ layers, else none)")
    recipe.add_argument("--no-warmup", action="store_true")
    run = train.add_argument_group("running")
    run.add_argument("--device", default="auto",
                     help="auto (this process's GPU when there is one, else the CPU), cpu, "
                          "cuda (GPU LOCAL_RANK under torchrun, else 0) or cuda:N")
    run.add_argument("--amp", choices=("bf16", "fp16"), help="autocast to this dtype")
    run.add_argument("--channels-last", action="store_true")
    run.add_argument("--compile", action="store_true", help="torch.compile the model")
    run.add_argument("--workers", type=whole, default=None,
                     help="data loader processes (0 for in-memory data, 4 for images)")
    run.add_argument("--seed", type=whole, default=0)
    run.add_argument("--log-every", type=positive, default=20, metavar="N",
                     help="sync, log and check for Ctrl-C every N steps (20)")
    run.add_argument("--eval-every", type=positive, default=2000, metavar="N")
    run.add_argument("--test-images", type=positive, metavar="N",
                     help="evaluate on the first N test images only, at every --eval-every "
                          "and at the end (for smoke runs; the default is all of them)")
    run.add_argument("--checkpoint-every", type=positive, default=1000, metavar="N")
    run.add_argument("--keep-checkpoints", type=positive, default=3, metavar="N",
                     help="keep the newest N checkpoints (3), each with its sha256")
    run.add_argument("--synthetic-size", type=positive, default=1024, metavar="N",
                     help="images in the synthetic source (7/8 train, 1/8 test)")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress on stderr (a bar on a terminal, a line per sync "
                          "when piped)")
    run.add_argument("--tensorboard", action="store_true",
                     help="also write TensorBoard event files to DIR/tensorboard "
                          "(needs the tensorboard package)")


def _train(args) -> int:
    from resdsl.backends.summary import summarize
    from resdsl.training.loop import TrainConfig, train
    from resdsl.training.recipe import default_recipe

    graph = build(args.file, args)  # once: for the recipe, the memory check and the model
    arch, params = named_network(args.file, args)
    summary = summarize(graph)
    recipe = default_recipe(summary.input[-1], summary.layers)
    for name in ("steps", "batch", "lr", "milestones", "momentum", "weight_decay"):
        if getattr(args, name) is not None:
            setattr(recipe, name, getattr(args, name))
    if args.warmup_lr is not None:
        recipe.warmup_lr = args.warmup_lr
    if args.no_warmup:
        recipe.warmup_lr = None
    result = train(TrainConfig(
        arch=arch, recipe=recipe, data=args.data, out=Path(args.out),
        params=params, eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every, log_every=args.log_every, seed=args.seed,
        test_images=args.test_images,
        device=args.device, amp=args.amp, channels_last=args.channels_last,
        compile=args.compile, workers=loader_workers(args), resume=args.resume,
        overwrite=args.overwrite, keep_checkpoints=args.keep_checkpoints,
        synthetic_size=args.synthetic_size, progress=not args.no_progress,
        tensorboard=args.tensorboard), graph)
    return EXIT_INTERRUPTED if result.interrupted else 0


TRAIN = Command(
    "train", "train a network with the paper's recipe",
    "Train the network with the paper's recipe: SGD, momentum 0.9, weight decay 1e-4, "
    "learning rate 0.1 divided by 10 at the milestones; CIFAR-sized inputs get sec. 4.2's "
    "settings (batch 128, milestones 32k and 48k, 64k steps, 4-pixel pad, random crop and "
    "flip, per-pixel mean; a 0.01 warm-up until the training error is under 80% for 110 "
    "layers or more), 224-pixel inputs sec. 3.4's (batch 256, scale augmentation in "
    "[256, 480], random 224 crop and flip). Runs on one CPU or GPU, or under torchrun with "
    "DistributedDataParallel. Writes metrics.jsonl and checkpoints (atomically, each with "
    "its sha256, the newest few kept) to --out, which one run holds at a time and which a "
    "new run does not start over without --overwrite. Ctrl-C saves a checkpoint and "
    "stops; --resume continues bit for bit. A loss that is not finite stops the run "
    "before it reaches a checkpoint.",
    ("resdsl train archs/cifar-resnet.arch --set n=9 --data cifar10:cifar-10-batches-py --out runs/resnet56",
     "torchrun --nproc_per_node 4 -m resdsl train archs/resnet50-v1.5.arch --data imagefolder:imagenet --out runs/r50 --amp bf16 --channels-last",
     "resdsl train archs/cifar-resnet.arch --data synthetic --steps 200 --out /tmp/smoke --overwrite",
     "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 torchrun --standalone --nproc_per_node 8 --max-restarts 3 -m resdsl train archs/resnet50.arch --data imagefolder:imagenet --out runs/r50 --resume auto"),
    _arguments, _train)


def _plot_arguments(parser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="the --out folder of a `resdsl train` run, or its metrics.jsonl")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="the figure: OUT.png, OUT.pdf or OUT.svg")
    parser.add_argument("--title", help="a title above the plot")


def _plot(args) -> int:
    from resdsl.training.curves import draw, figure_format, read

    figure_format(args.output)
    runs = [read(run) for run in args.runs]
    draw(runs, args.output, args.title)
    for curves in runs:
        print(curves.summary())
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


PLOT = Command(
    "plot", "draw training curves of one or more runs (the paper's Fig. 4 and 6)",
    "Draw the training and test error of `resdsl train` runs against iterations, as the "
    "paper's Figures 4 and 6 do: one colour per run, training error thin and dashed "
    "(averaged over windows of steps), test error bold. Reads each run's metrics.jsonl; "
    "prints each run's last and lowest test error. Needs matplotlib "
    "(pip install 'resdsl[plot]').",
    ("resdsl plot runs/plain20 runs/resnet20 -o figure6.png",
     "resdsl plot runs/resnet56/metrics.jsonl -o resnet56.pdf --title 'ResNet-56, CIFAR-10'"),
    _plot_arguments, _plot, network_options=False)
