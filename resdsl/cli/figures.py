"""`resdsl render`: networks side by side as the paper draws them (Fig. 3)."""

from __future__ import annotations

import sys

from resdsl.cli.common import EXIT_USAGE, Command, unknown_figure_format


def _arguments(parser) -> None:
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help=".arch files or bundled network names, left to right")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="the figure: OUT.svg, OUT.png, OUT.pdf or OUT.dot")
    parser.add_argument("--collapse", action="store_true",
                        help="fold each run of identical residual units into one box "
                             "marked '×N blocks' (ResNet-152 fits on a page)")
    parser.add_argument("--shapes", action="store_true",
                        help="label the edges with tensor shapes (C x H x W)")
    parser.add_argument("--rankdir", choices=("TB", "LR"), default="TB",
                        help="columns top to bottom (TB, the default, as in the paper) or "
                             "rows left to right (LR)")


def _render(args) -> int:
    from resdsl.api import render
    from resdsl.backends.figure.draw import write

    if unknown_figure_format("render", args.output):
        return EXIT_USAGE
    figure = render(*args.files, collapse=args.collapse, shapes=args.shapes,
                    rankdir=args.rankdir, **dict(args.overrides))
    if args.output:
        write(figure, args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(figure.source)
    return 0


RENDER = Command(
    "render", "draw networks side by side (the paper's Fig. 3)",
    "Draw networks side by side with graphviz, one box per layer as the paper labels them, "
    "rows aligned by output size, and shortcuts as arcs beside each residual column: solid "
    "for the identity, dotted where the shortcut increases dimensions. With no FILE, draw "
    "the paper's Figure 3 (VGG-19, 34-layer plain, 34-layer residual). The format follows "
    "the extension of -o (.svg, .png, .pdf, .dot); without -o the DOT source goes to stdout. "
    "Drawing needs graphviz's `dot` program.",
    ("resdsl render -o figure3.png",
     "resdsl render resnet152 --collapse -o resnet152.svg",
     "resdsl render archs/cifar-plain.arch archs/cifar-resnet.arch --set n=9 --shapes -o cifar56.pdf"),
    _arguments, _render)
