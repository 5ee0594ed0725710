"""One training step on the device: forward under autocast, cross-entropy, backward
(through fp16's gradient scaler), SGD, the schedule. Nothing here waits for the GPU: the
step's loss and error stay on the device until the loop syncs."""

from __future__ import annotations

import warnings

import torch

PRECISIONS = {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, amp: str | None):
    """Autocast to `amp` (bf16 or fp16) on `device`, or a context that changes nothing."""
    return torch.autocast(device.type, dtype=PRECISIONS[amp], enabled=amp is not None)


def memory_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format


class TrainStep:
    """`step(x, y)` trains on one batch and returns (summed loss, wrong answers, images)
    as a tensor on the device."""

    def __init__(self, forward, optimizer, schedule, device: torch.device, amp: str | None,
                 channels_last: bool):
        self.forward, self.optimizer, self.schedule = forward, optimizer, schedule
        self.device, self.amp = device, amp
        self.layout = memory_format(channels_last)
        # fp16 needs loss scaling to keep small gradients; it skips a step whose
        # gradients overflow, as torch does. bf16 has fp32's range and needs none.
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True, memory_format=self.layout)
        y = y.to(self.device, non_blocking=True)
        with autocast(self.device, self.amp):
            out = self.forward(x)
            loss = torch.nn.functional.cross_entropy(out, y)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        with warnings.catch_warnings():  # a first step that fp16 skipped is not a misuse
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step()`")
            self.schedule.step()
        return torch.stack([loss.detach().float() * len(y),
                            (out.argmax(1) != y).sum().float(),
                            torch.full((), float(len(y)), device=out.device)])
