"""What `resdsl eval` tests: trained networks, each with the input normalisation it was
trained with.

- A `resdsl train` run folder (its newest intact checkpoint) or a checkpoint file: the
  network is the .arch file and --set values recorded in it, and the input has the
  training data's per-pixel mean subtracted, as training did.
- A state-dict file (`--weights`) for an .arch file, in resdsl's or torchvision's module
  names. torchvision's weights expect its per-channel normalisation (`imagenet`).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from resdsl.passes.pipeline import build
from resdsl.backends.pytorch.runtime import from_graph
from resdsl.backends.summary import NetworkSummary, summarize
from resdsl.errors import ResdslError, Span
from resdsl.training import checkpoint

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's, for its ImageNet weights
IMAGENET_STD = (0.229, 0.224, 0.225)
WHAT_TO_GIVE = ("give the --out folder of a `resdsl train` run, a checkpoint file, or an "
                ".arch file with --weights")


@dataclass
class Member:
    path: str  # the run folder, checkpoint or weights file
    model: torch.nn.Module  # in eval mode
    summary: NetworkSummary
    normalize: str  # "mean": subtract the data's mean; "imagenet": torchvision's
    step: int | None = None  # a checkpoint's

    @property
    def name(self) -> str:
        return self.path if self.step is None else f"{self.path} (step {self.step:,})"

    def scores(self, x: torch.Tensor, data_mean: torch.Tensor) -> torch.Tensor:
        """Softmax scores for images `x` in [0, 1]. A per-pixel mean that is not the
        size of `x` (multi-scale views) is subtracted as its per-channel average."""
        if self.normalize == "imagenet":
            mean = torch.tensor(IMAGENET_MEAN, device=x.device)[:, None, None]
            x = (x - mean) / torch.tensor(IMAGENET_STD, device=x.device)[:, None, None]
        elif data_mean.shape[-2:] == x.shape[-2:]:
            x = x - data_mean
        else:
            x = x - data_mean.mean((-2, -1), keepdim=True)
        return torch.softmax(self.model(x).float(), 1)


def from_run(path: str | Path, device: torch.device) -> Member:
    """A run folder's newest intact checkpoint, or one checkpoint file."""
    path = Path(path)
    if not path.exists():
        raise ResdslError(f"no run folder or checkpoint file '{path}'", Span(str(path), 0, 0),
                          hint=WHAT_TO_GIVE, code="E705")
    if path.is_dir():
        found = checkpoint.newest_intact(path)
        if found is None:
            raise ResdslError(f"{path} holds no checkpoint ({checkpoint.PATTERN})",
                              Span(str(path), 0, 0), hint=WHAT_TO_GIVE, code="E705")
        state = found.state
        for skipped, reason in found.skipped:
            print(f"{skipped}: skipped, it {reason}; using {found.path.name}", file=sys.stderr)
    elif not re.fullmatch(r"checkpoint-[0-9]+\.pt", path.name):
        raise ResdslError(f"{path} is not a checkpoint that `resdsl train` wrote "
                          "(checkpoint-STEP.pt)", Span(str(path), 0, 0),
                          hint="give a run folder or one of its checkpoints; `resdsl eval` "
                               "reads other state dicts as an .arch file with --weights",
                          code="E705")
    else:
        try:
            state = checkpoint.read(path)
        except checkpoint.Damaged as reason:
            raise ResdslError(f"{path.name} {reason}", Span(str(path), 0, 0),
                              code="E705") from None
    graph = build(str(state["arch"]), **state["params"])
    model = from_graph(graph, state_dict=state["model"]).to(device).eval()
    return Member(str(path), model, summarize(graph), "mean", int(state["step"]))


def from_weights(arch: str, params: dict, weights: str | Path, naming: str, normalize: str,
                 device: torch.device) -> Member:
    """A state-dict file (or a resdsl checkpoint's weights) loaded strictly into `arch`."""
    weights = Path(weights)
    if not weights.is_file():
        raise ResdslError(f"no weights file '{weights}'", Span(str(weights), 0, 0),
                          code="E705")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a file that is not its own
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
        why = (f"it holds objects other than tensors ({found.group(1)}), which resdsl does "
               "not load" if found else "it is not a file that torch.save wrote, or it is "
               "truncated")
        raise ResdslError(f"cannot read {weights} as a state dict: {why}",
                          Span(str(weights), 0, 0),
                          hint="give a file that torch.save wrote from a state_dict()",
                          code="E705") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a resdsl checkpoint
    if not isinstance(state, dict):
        raise ResdslError(f"{weights} holds a {type(state).__name__}, not a state dict",
                          Span(str(weights), 0, 0), code="E705")
    graph = build(arch, **params)
    model = from_graph(graph, naming=naming, state_dict=state).to(device).eval()
    return Member(str(weights), model, summarize(graph), normalize)


def check_alike(members: list[Member]) -> None:
    """An ensemble's members take the same input and score the same classes."""
    first = members[0]
    for member in members[1:]:
        if (member.summary.input, member.summary.output) != (first.summary.input,
                                                             first.summary.output):
            raise ResdslError(
                f"{member.name} takes {_shape(member.summary)}, but {first.name} takes "
                f"{_shape(first.summary)}: an ensemble's members must agree",
                Span(member.path, 0, 0), code="E705")


def _shape(summary: NetworkSummary) -> str:
    return (f"{'x'.join(map(str, summary.input))} to {summary.output[0]} classes")
