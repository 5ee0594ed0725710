"""The Python API of the analysis path: .arch file → verified IR graph → summary.

Nothing here imports torch; `resdsl.load` (the torch backend) is separate.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable

from resdsl import bundled, safety
from resdsl.backends.latency import latency  # noqa: F401  (resdsl.latency)
from resdsl.backends.summary import NetworkSummary, format_html, summarize
from resdsl.errors import ResdslError, ResdslWarning, Span
from resdsl.frontend.config import last_of, resolve_config, split_variant
from resdsl.frontend.resolve import load_spec
from resdsl.passes.pipeline import build


def count(path: str, *, sizes=None, **params):
    """Params and multiply-adds per stage and in total (see `summary.CONVENTION`). With
    `sizes` (`"160,224,320"`, or `[160, "224x192", (320, 320)]`), one summary per input
    size instead, as `Sizes`: each equals `count(path, input="CxHxW")` at that size."""
    if sizes is None:
        return summarize(build(path, **params))
    return count_sizes(path, sizes, **params)


class Sizes(list):
    """One `NetworkSummary` per input size, in the order given. `table()` is what `resdsl
    flops --sizes` prints; a notebook shows each size's stage table. `columns_at[i]` is
    the (height, width) at which summary i's output-size columns were checked (the size
    the file declares: README, "columns are read"), None when the file writes none."""

    def __init__(self, summaries, names: list[str], columns_at: list[tuple[int, int] | None]):
        super().__init__(summaries)
        self.names, self.columns_at = names, columns_at

    def table(self, metric: str = "macs") -> str:
        from resdsl.backends.table import format_sizes

        return format_sizes(list(zip(self.names, self, self.columns_at)), metric)

    def _repr_html_(self) -> str:
        return "".join(format_html(summary) for summary in self)


def read_sizes(sizes) -> list[tuple[int, int]]:
    """Input sizes as (height, width) from `"160,224x192"` or a list of whole numbers
    (N is NxN), `"HxW"` texts and (height, width) pairs; a ValueError names a bad item."""
    items = sizes.split(",") if isinstance(sizes, str) else sizes
    if isinstance(items, (bytes, dict)) or not isinstance(items, Iterable):
        raise ValueError(f"sizes are a list such as 160,224,320x240, not {sizes!r}")
    out = []
    for item in items:
        if isinstance(item, (tuple, list)):
            parts = list(item)
        else:
            parts = [item] if isinstance(item, int) else str(item).strip().lower().split("x")
        if len(parts) not in (1, 2) or not all(map(_positive, parts)):
            raise ValueError("a size is a positive whole number N (for NxN) or HxW, as in "
                             f"160 or 224x192, not {item!r}")
        height, width = (int(p) for p in parts * (3 - len(parts)))
        out.append((height, width))
    if not out:
        raise ValueError("no sizes: give them as 160,224,320")
    return out


def _positive(part) -> bool:
    if isinstance(part, str):  # ASCII digits only: int() would also take ٣ and １
        part = int(part) if part.isascii() and part.isdigit() and len(part) < 10 else 0
    return isinstance(part, int) and not isinstance(part, bool) and part > 0


def count_sizes(path: str, sizes, dump_to: Callable[[str], None] | None = None,
                **params) -> Sizes:
    """`path` at each size, with the channels of the input in effect (the file's, or an
    `input=` in `params` or after `@`). An error at one size says which size; a warning
    that every size repeats is issued once."""
    name, own = split_variant(str(path))
    own, _ = last_of(own)
    spec = load_spec(bundled.find_arch(name))
    channels = resolve_config(spec, {**params, **own}).input_shape[0]
    kept = {k: v for k, v in own.items() if k != "input"}  # the @input= is replaced too
    target = str(path) if "input" not in own else (
        f"{name}@{','.join(f'{k}={v}' for k, v in kept.items())}" if kept else name)
    others = {k: v for k, v in params.items() if k != "input"}
    shown = {**others, **kept}
    label = spec.name + (f"[{','.join(f'{k}={v}' for k, v in shown.items())}]" if shown else "")
    summaries, columns_at, issued = [], [], set()
    for height, width in read_sizes(sizes):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                graph = build(target, dump_to, **others, input=f"{channels}x{height}x{width}")
        except ResdslError as error:
            raise _at_size(error, f"{height}x{width}") from None
        for warning in caught:
            key = getattr(warning.message, "diagnostic", warning.message)
            if not isinstance(warning.message, ResdslWarning) or key not in issued:
                issued.add(key)
                warnings.warn(warning.message, stacklevel=3)
        config = graph.graph["config"]
        written = any(stage.size for stage in graph.graph["stages"])
        columns_at.append(tuple((config.written_input or config.input_shape)[1:])
                          if written else None)
        summaries.append(summarize(graph))
    return Sizes(summaries, [label] * len(summaries), columns_at)


def _at_size(error: ResdslError, size: str) -> ResdslError:
    """The same diagnostic, its message saying at which of the sizes it arose."""
    d = error.diagnostic
    at = ResdslError(f"at input size {size}: {d.message}", d.span, d.hint, d.source,
                     code=d.code)
    at.warnings = error.warnings
    return at

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



def memory(path: str, *, batch: int = 1, training: bool = True, optimizer: str | None = "sgd",
           amp: str | None = None, device: str = "cpu", **params):
    """The memory of a training step (or, `training=False`, of inference) on `batch`
    images, per layer and in total, as `resdsl memory` prints it (a `MemoryEstimate`)."""
    from resdsl.backends.pytorch.memory import estimate

    return estimate(build(path, **params), batch, training, optimizer, amp, device)


def diff(a: str, b: str, **params):
    """What changed from network `a` to `b`, part by part, as `resdsl diff` prints it (a
    `NetworkDiff`; `a="resnet50@stride_on=3x3"` gives one side its own values)."""
    from resdsl.backends.diff import diff as compare

    return compare(build(a, **params), build(b, **params))
