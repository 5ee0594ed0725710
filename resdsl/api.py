"""The Python API of the analysis path: .arch file → verified IR graph → summary.

Nothing here imports torch; `resdsl.load` (the torch backend) is separate.
"""

from __future__ import annotations

from resdsl import bundled, safety
from resdsl.backends.summary import NetworkSummary, summarize
from resdsl.errors import Span
from resdsl.passes.pipeline import build


def count(path: str, **params) -> NetworkSummary:
    """Params and multiply-adds per stage and in total (see `summary.CONVENTION`)."""
    return summarize(build(path, **params))


FIGURE_3 = (("vgg19", "VGG-19"), ("plain34", "34-layer plain"),
            ("resnet34", "34-layer residual"))


def render(*paths: str, titles: list[str] | None = None, collapse: bool = False,
           shapes: bool = False, rankdir: str = "TB", **params):
    """The networks side by side as a `graphviz.Digraph` (shown inline in notebooks).
    With no paths, the paper's Figure 3: VGG-19, 34-layer plain, 34-layer residual."""
    from resdsl.backends.figure.draw import draw
    from resdsl.backends.figure.layout import layout

    if not paths:
        archs = bundled.bundled_archs()
        paths = tuple(str(archs[name]) for name, _ in FIGURE_3)
        titles = titles or [title for _, title in FIGURE_3]
    titles = list(titles or [None] * len(paths))
    if len(titles) != len(paths):
        raise ValueError(f"{len(paths)} networks but {len(titles)} titles")
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"rankdir must be TB or LR, not {rankdir!r}")
    columns = [layout(build(path, **params), i, title, collapse)
               for i, (path, title) in enumerate(zip(paths, titles))]
    _within_box_limit(columns, paths, collapse)
    return draw(columns, shapes=shapes, rankdir=rankdir)


def _within_box_limit(columns, paths, collapse: bool) -> None:
    """graphviz's layout grows faster than linearly: refuse a figure it would take
    minutes to draw, at the file of its tallest column."""
    boxes = sum(len(column.boxes) for column in columns)
    if boxes > safety.current().figure_boxes:
        tallest = max(range(len(columns)), key=lambda i: len(columns[i].boxes))
        raise safety.exceeded(
            "figure_boxes", f"the figure has {boxes:,} boxes", Span(str(paths[tallest]), 0, 0),
            hint="" if collapse else "--collapse draws each run of identical units as one box",
            code="E607")

