"""What a user watches on stderr: on a terminal a tqdm bar that redraws in place, when
piped one plain line per sync. Both show step, epoch, loss, training error, learning
rate, images/s and the time left."""

from __future__ import annotations

import sys

from tqdm import tqdm


class Progress:
    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total = enabled, total
        self.terminal = enabled and sys.stderr.isatty()
        self.bar = None  # drawn from the first update on, below the lines before it

    def update(self, step: int, epoch: int, loss: float, error: float, lr: float,
               images_per_second: float | None, seconds_left: float | None) -> None:
        if not self.enabled:
            return
        fields = (f"epoch {epoch} · loss {loss:.3f} · train error {100 * error:.1f}% · "
                  f"lr {lr:g} · {_rate(images_per_second)} img/s · "
                  f"ETA {_duration(seconds_left)}")
        if self.terminal:
            if self.bar is None:
                self.bar = tqdm(total=self.total, initial=step, desc=fields, file=sys.stderr,
                                dynamic_ncols=True,
                                bar_format="step {n_fmt}/{total_fmt} {bar} {desc}")
            self.bar.set_description_str(fields, refresh=False)
            self.bar.update(step - self.bar.n)
        else:
            print(f"step {step:>{len(str(self.total))}}/{self.total} · {fields}",
                  file=sys.stderr, flush=True)

    def message(self, text: str) -> None:
        """A line of its own on stdout, printed above the bar on a terminal."""
        if self.bar is not None:
            self.bar.clear()
        print(text, flush=True)
        if self.bar is not None:
            self.bar.refresh()

    def close(self) -> None:
        """Leave the bar as it ended; later lines print below it."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.terminal = False


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
