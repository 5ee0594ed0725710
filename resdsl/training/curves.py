"""Training curves as the paper draws them (Figures 4 and 6): error (%) against
iterations, each run in its own colour, training error thin and dashed, test error bold.
Read from the `metrics.jsonl` that `resdsl train` writes; drawn with matplotlib."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from resdsl.errors import ResdslError, Span
from resdsl.output import write_atomic
from resdsl.training.metrics import METRICS

FORMATS = ("png", "pdf", "svg")
POINTS = 100  # training error is averaged over windows that leave at most this many points


@dataclass
class Curves:
    name: str
    train: list[tuple[int, float]] = field(default_factory=list)  # (step, error)
    test: list[tuple[int, float]] = field(default_factory=list)

    def summary(self) -> str:
        if not self.test:
            return f"{self.name}: no test error recorded"
        step, error = self.test[-1]
        best_step, best = min(self.test, key=lambda point: point[1])
        return (f"{self.name}: test error {100 * error:.2f}% at step {step:,} "
                f"(lowest {100 * best:.2f}% at step {best_step:,})")


def read(run: str | Path) -> Curves:
    """A run's curves from its --out folder or its metrics.jsonl."""
    path = Path(run)
    if path.is_dir():
        path = path / METRICS
    if not path.is_file():
        raise ResdslError(f"{run} is neither a run folder with {METRICS} nor such a file",
                          Span(str(path), 0, 0),
                          hint="give the --out folder of a `resdsl train` run", code="E709")
    name = path.parent.name if path.name == METRICS else path.stem
    curves = Curves(name or str(path))
    lines = path.read_bytes().decode("utf-8", errors="replace").split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            point = (int(record["step"]), record["error"])
            split = record["split"]
        except (ValueError, KeyError, TypeError) as error:
            if number == len(lines):  # no newline yet: being written, or torn by a full disk
                break
            raise ResdslError(f"line {number} is not a metrics record ({error})",
                              Span(str(path), number, 1), code="E709") from None
        if point[1] is not None:  # a non-finite error is recorded as null
            {"train": curves.train, "test": curves.test}.get(split, []).append(point)
    return curves


def smoothed(points: list[tuple[int, float]]) -> list[tuple[float, float]]:
    """Means over consecutive windows: per-step training error is a single batch's."""
    size = max(len(points) // POINTS, min(20, len(points) // 5), 1)
    return [(sum(s for s, _ in chunk) / len(chunk), sum(e for _, e in chunk) / len(chunk))
            for chunk in (points[i:i + size] for i in range(0, len(points), size))]


def figure_format(output: str | Path) -> str:
    """The format that `output`'s extension names, or an error before any work is done."""
    fmt = Path(output).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ResdslError(f"cannot tell the format of {output}: use .png, .pdf or .svg",
                          Span(str(output), 0, 0), code="E701")
    return fmt


def draw(runs: list[Curves], output: str | Path, title: str | None = None) -> None:
    """Write the figure, whole or not at all, in the format `output`'s extension names."""
    figure_format(output)
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 4), dpi=150)
    for curves, colour in zip(runs, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 10):
        if curves.train:
            steps, errors = zip(*smoothed(curves.train))
            axes.plot(steps, [100 * e for e in errors], color=colour, linewidth=0.8,
                      linestyle="--", alpha=0.8)
        if curves.test:
            steps, errors = zip(*curves.test)
            axes.plot(steps, [100 * e for e in errors], color=colour, linewidth=2.2,
                      label=curves.name)
    axes.set_xlabel("iter.")
    axes.set_ylabel("error (%)")
    axes.grid(alpha=0.3)
    if title:
        axes.set_title(title)
    axes.legend(title="dashed: training, bold: test", fontsize="small", title_fontsize="small")
    save(figure, output)


def pyplot():
    """matplotlib's pyplot, drawing to files (Agg), or E708 when it is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ResdslError("plotting needs matplotlib", hint="pip install matplotlib "
                          "(or 'resdsl[plot]')", code="E708") from None
    return plt


def save(figure, output: str | Path) -> None:
    """Write a figure whole or not at all, in the format `output`'s extension names."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=figure_format(output), bbox_inches="tight")
    pyplot().close(figure)
    write_atomic(output, buffer.getvalue())
