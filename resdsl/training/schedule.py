"""The paper's learning rate as a torch `LRScheduler`, stepped once per training step:
the rate divided by 10 at each milestone (sec. 3.4, 4.2), and for the 110-layer CIFAR
net a lower warm-up rate until the training error falls below 80% (sec. 4.2). Its state
(step and whether it is still warming up) goes into the checkpoint."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class PaperSchedule(LRScheduler):
    def __init__(self, optimizer: Optimizer, milestones: tuple[int, ...],
                 warmup_lr: float | None = None, warmup_until: float = 0.8,
                 last_epoch: int = -1):
        self.milestones = tuple(milestones)
        self.warmup_lr, self.warmup_until = warmup_lr, warmup_until
        self.warming_up = warmup_lr is not None
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return self._rates()

    def _rates(self) -> list[float]:
        """The rates for step `last_epoch` (the number of steps taken so far)."""
        if self.warming_up:
            return [self.warmup_lr for _ in self.base_lrs]
        drops = sum(self.last_epoch >= m for m in self.milestones)
        return [base * 0.1 ** drops for base in self.base_lrs]

    def observe(self, training_error: float) -> None:
        """End the warm-up once the training error is below the threshold; the next step
        runs at the full rate."""
        if self.warming_up and training_error < self.warmup_until:
            self.warming_up = False
            self._last_lr = self._rates()
            for group, lr in zip(self.optimizer.param_groups, self._last_lr):
                group["lr"] = lr
