"""Top-1 and top-5 error of each member and of their ensemble, under each test. Softmax
scores are averaged over an image's views, then over the members (the paper's ensemble
of sec. 3.4, Table 4)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from resdsl.evaluation.members import Member
from resdsl.evaluation.views import Batch, batches, views
from resdsl.training.data import Split
from resdsl.training.progress import ImageProgress


@dataclass
class Row:
    test: str
    who: str  # a member's name, or "ensemble"
    top1_wrong: int = 0
    top5_wrong: int = 0
    images: int = 0

    @property
    def top1(self) -> float:
        return self.top1_wrong / self.images

    @property
    def top5(self) -> float:
        return self.top5_wrong / self.images


def evaluate(members: list[Member], split: Split, tests: tuple[str, ...],
             scales: tuple[int, ...], batch: int, device: torch.device, workers: int,
             progress: bool) -> list[Row]:
    """One row per test and member, and per test an ensemble row when there are several
    members. `split` is the test split with the training data's mean (`Split.mean`)."""
    who = [member.name for member in members] + ["ensemble"] * (len(members) > 1)
    rows = {(test, name): Row(test, name) for test in tests for name in who}
    mean = split.mean.to(device)
    with torch.no_grad(), ImageProgress(progress, len(split), "evaluating") as bar:
        for images in batches(split, batch, tests, scales, workers):
            images = images.to(device)
            for test in tests:
                scores = [_averaged(member, test, images, split.crop, scales, mean)
                          for member in members]
                if len(members) > 1:
                    scores.append(torch.stack(scores).mean(0))
                for name, score in zip(who, scores):
                    _count(rows[test, name], score, images.labels)
            bar.update(len(images.labels))
    return list(rows.values())


def _averaged(member: Member, test: str, images: Batch, crop: int, scales: tuple[int, ...],
              mean: torch.Tensor) -> torch.Tensor:
    device = images.labels.device
    total = torch.zeros(len(images.labels), member.summary.output[0], device=device)
    count = torch.zeros(len(images.labels), 1, device=device)
    for which, x in views(test, images, crop, scales):
        total[which] += member.scores(x, mean)
        count[which] += 1
    return total / count


def _count(row: Row, scores: torch.Tensor, labels: torch.Tensor) -> None:
    best = scores.topk(min(5, scores.shape[1]), dim=1).indices
    row.top1_wrong += int((best[:, 0] != labels).sum())
    row.top5_wrong += int((best != labels[:, None]).all(1).sum())
    row.images += len(labels)
