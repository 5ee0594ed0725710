"""Where this process runs: its rank among the processes torchrun started, its device,
the collective operations the loop needs, and the signals that ask it to stop."""

from __future__ import annotations

import gc
import hashlib
import os
import re
import signal

import torch
import torch.distributed as dist

from resdsl.backends.pytorch.devices import resolve_device
from resdsl.errors import ResdslError


class Process:
    """One process of `world`: rank 0 alone logs and checkpoints. Under torchrun the
    processes join a group (NCCL on GPUs, gloo on CPUs) and each takes GPU `LOCAL_RANK`.
    A context manager: once the run ends, the process leaves the group it joined and the
    group's worker threads end. A worker that outlives the Python code may still be
    releasing the tensors of the last collective when the interpreter shuts down; it then
    aborts the process ("terminate called without an active exception", SIGABRT), which
    torchrun counts as a failed attempt even after a run that finished."""

    def __init__(self, requested: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = resolve_device(requested, int(os.environ.get("LOCAL_RANK", "0")))
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.joined = False  # a group that this process started, and so must leave
        if self.world > 1 and not dist.is_initialized():
            _import_before_the_group()
            try:
                dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            except RuntimeError as error:
                raise self.peer_failure(error) or error
            self.joined = True

    def __enter__(self) -> "Process":
        return self

    def __exit__(self, error_type, *exc) -> None:
        """After a run that ended, leave the group; after an error, leave it as it is: a
        lost peer can leave it unable to shut down, and the error must be reported before
        torchrun, which saw the peer die too, stops this process."""
        if self.joined and error_type is None and dist.is_initialized():
            gc.collect()  # the DDP wrapper, whose reference cycles hold the group
            dist.destroy_process_group()  # the last reference: its threads are joined
        self.joined = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            dist.all_reduce(tensor)
        return tensor

    def any(self, flag: bool) -> bool:
        """True on every rank when `flag` is true on one of them."""
        return bool(self.sum(torch.tensor([float(flag)], device=self.device)).item())

    def share_buffers(self, model: torch.nn.Module) -> None:
        """BN's running statistics from rank 0, as DDP shares them before each forward;
        after the last step each rank would otherwise keep those of its own batch."""
        if self.world > 1:
            for buffer in model.buffers():
                dist.broadcast(buffer, 0)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def peer_failure(self, error: RuntimeError) -> ResdslError | None:
        """E712 for a collective that failed because another process of the run died
        (NCCL raises a DistError, gloo a RuntimeError from its transport); None for any
        other error."""
        text = str(error)
        if self.world == 1 or not (isinstance(error, dist.DistError) or "gloo" in text):
            return None
        reason = re.sub(r"^\[[^\]]*\]\s*", "", text).split(". ")[0]  # no source path
        return ResdslError(f"rank {self.rank} lost the other processes of the run: {reason}",
                           hint="another rank stopped (see its output). Under torchrun "
                                "--max-restarts N, --resume auto continues from the last "
                                "checkpoint", code="E712")

    def replicas_digest(self, model: torch.nn.Module) -> str | None:
        """Under DDP every rank must end with the same weights: their common sha256, or
        a RuntimeError; None for a single process."""
        if self.world == 1:
            return None
        self.share_buffers(model)
        digest = hashlib.sha256()
        for name, tensor in model.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        digests = [None] * self.world
        dist.all_gather_object(digests, digest.hexdigest())
        if len(set(digests)) != 1:
            raise RuntimeError(f"the {self.world} replicas ended with different weights")
        return digests[0]


def _import_before_the_group() -> None:
    """Import what DDP imports on first use (torch._dynamo, and with it
    torch.distributed.nn) while no group exists: imported later, the defaults
    `group=group.WORLD` of torch.distributed.nn.functional would capture the world group
    and keep it, and its threads, alive until the interpreter's exit."""
    import torch._dynamo  # noqa: F401
    import torch.distributed.nn  # noqa: F401


class Interrupt:
    """The first SIGINT or SIGTERM asks the loop to save and stop at its next sync; a
    second one stops at once. A context manager: the previous handlers come back."""

    def __enter__(self) -> "Interrupt":
        self.requested = False
        self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signum, self.previous[signum])

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)
