"""A run's state in its checkpoints: where a run starts (afresh, or from the newest intact
checkpoint), what each save holds, and the guard that no non-finite weights ever replace a
good checkpoint. checkpoint.py is the files; this is what of a run goes into them."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from resdsl.errors import ResdslError, Span
from resdsl.training import checkpoint, rundir
from resdsl.training.config import TrainConfig
from resdsl.training.process import Process


class RunState:
    """The model, optimizer and schedule of one run, saved to and restored from `out`."""

    def __init__(self, config: TrainConfig, process: Process, model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, schedule):
        self.config, self.process = config, process
        self.model, self.optimizer, self.schedule = model, optimizer, schedule

    def start(self, network: str) -> tuple[int | None, list[str]]:
        """Continue from the newest intact checkpoint when asked to; otherwise make sure
        that `out` holds no earlier run, or clear it where that is asked for. The step it
        resumed at (None when it starts afresh) and the lines to tell the user."""
        config = self.config
        found = checkpoint.newest_intact(config.out) if config.resume else None
        if found is None:
            if config.resume is True:
                raise ResdslError(f"--resume: there is no checkpoint in {config.out}",
                                  Span(str(config.out), 0, 0),
                                  hint="resume with the --out folder of the run to continue; "
                                       "--resume auto starts afresh when there is none",
                                  code="E707")
            if self.process.main:
                if config.overwrite or config.resume == "auto":
                    rundir.clear(config.out)
                else:
                    rundir.refuse_earlier_run(config.out)
            return None, []
        state = found.state
        checkpoint.check_same_run(state, config.arch, config.params, found.path)
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.schedule.load_state_dict(state["schedule"])
            checkpoint.set_rng_state(state["rng"])
            step = int(state["step"])
        except (RuntimeError, KeyError, ValueError, TypeError) as error:
            raise ResdslError(f"--resume: {found.path.name} does not fit "
                              f"{network}: {str(error).splitlines()[0]}",
                              Span(str(found.path), 0, 0), code="E707") from None
        notes = [f"skipped {path}: it {reason}; removed it" for path, reason in found.skipped]
        if self.process.main:  # the run redoes those steps; kept, they would fill the slots
            for path, _ in found.skipped:
                checkpoint.remove(path)
        return step, notes + [f"resuming from {found.path} (step {step:,})"]

    def save(self, step: int) -> None:
        """Checkpoint `step` from rank 0, after every rank has BN statistics equal to
        rank 0's; E711 instead where any weight is not finite."""
        self.process.share_buffers(self.model)
        state = self.model.state_dict()
        finite = torch.stack([t.isfinite().all() for t in state.values()
                              if t.is_floating_point()]).all()
        if not finite:  # never a bad checkpoint in place of a good one
            raise self.diverged(f"the weights are not finite at step {step:,}")
        if self.process.main:
            config = self.config
            checkpoint.save(config.out, {
                "model": state, "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(), "step": step,
                "arch": str(Path(config.arch).resolve()), "params": config.params,
                "recipe": asdict(config.recipe)}, config.keep_checkpoints)
        self.process.barrier()

    def diverged(self, what: str) -> ResdslError:
        saved = checkpoint.saved(self.config.out)
        kept = (f"the last checkpoint, {saved[0]}, was saved before it"
                if saved else "no checkpoint was saved")
        return ResdslError(f"training diverged: {what}; {kept}",
                           Span(str(self.config.out), 0, 0),
                           hint="lower --lr or add --warmup-lr, and start again with "
                                "--overwrite", code="E711")
