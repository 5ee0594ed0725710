"""What a user watches on stderr: on a terminal a tqdm bar that redraws in place, when
piped plain lines that a log file keeps readable. Training shows step, epoch, loss,
training error, learning rate, images/s and the time left, a line per sync when piped;
evaluation shows the images done, a line per tenth when piped (`ImageProgress`)."""

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


class ImageProgress:
    """Images done of `total`, as a context manager around the loop that does them."""

    def __init__(self, enabled: bool, total: int, what: str):
        self.enabled, self.total, self.what = enabled, total, what
        self.done, self.said = 0, 0  # images, and the tenths already printed when piped
        self.bar = (tqdm(total=total, unit="image", file=sys.stderr, desc=what,
                         dynamic_ncols=True) if enabled and sys.stderr.isatty() else None)

    def update(self, images: int) -> None:
        self.done += images
        if self.bar is not None:
            self.bar.update(images)
        elif self.enabled and self.done * 10 // max(self.total, 1) > self.said:
            self.said = self.done * 10 // max(self.total, 1)
            print(f"{self.what}: {self.done:,}/{self.total:,} images", file=sys.stderr,
                  flush=True)

    def __enter__(self) -> "ImageProgress":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
