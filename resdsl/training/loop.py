"""The training loop, one process of one or many (torchrun): it joins the pieces.

process.py (rank, device, collectives, signals) → data.py (sources) → feed.py (batches
on the device, in a fixed order) with augment.py → step.py (one step on the device) →
schedule.py (the learning rate) → evaluate.py → metrics.py (metrics.jsonl, TensorBoard,
speed) and progress.py (what a user watches) → checkpoint.py (checked saves, exact
resume), all in the --out folder that rundir.py holds for the run.

The loop syncs with the host every `log_every` steps, not every step: there it gathers
the window's per-step loss and error from all ranks, records them, updates the progress
line, ends the warm-up, checks for an interrupt and a diverged loss, evaluates and
checkpoints. Checkpoints fall on these steps, so a resumed run repeats the uninterrupted
one exactly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import networkx as nx
import torch
from torch.nn.parallel import DistributedDataParallel

import resdsl
from resdsl.backends.pytorch import memory
from resdsl.backends.pytorch.devices import describe
from resdsl.backends.pytorch.runtime import from_graph
from resdsl.backends.summary import summarize
from resdsl.errors import ResdslError, Span
from resdsl.training import checkpoint, rundir
from resdsl.training.data import open_source
from resdsl.training.evaluate import evaluate
from resdsl.training.feed import batches, batches_per_epoch
from resdsl.training.metrics import METRICS, TENSORBOARD, MetricsLog, SpeedMeter, Window
from resdsl.training.process import Interrupt, Process
from resdsl.training.progress import Progress
from resdsl.training.recipe import Recipe
from resdsl.training.schedule import PaperSchedule
from resdsl.training.step import TrainStep, memory_format


@dataclass
class TrainConfig:
    arch: str
    recipe: Recipe
    data: str  # "cifar10:DIR", "imagefolder:DIR" or "synthetic"
    out: Path
    params: dict = field(default_factory=dict)
    eval_every: int = 2000
    checkpoint_every: int = 1000
    log_every: int = 20
    seed: int = 0
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    amp: str | None = None  # "bf16" or "fp16"
    channels_last: bool = False
    compile: bool = False
    workers: int = 0
    resume: bool | Literal["auto"] = False  # True: a checkpoint must exist; "auto": if one does
    overwrite: bool = False  # replace an earlier run's records in `out`
    keep_checkpoints: int = 3
    synthetic_size: int = 1024
    progress: bool = True
    tensorboard: bool = False


@dataclass
class Result:
    step: int
    test_error: float | None
    interrupted: bool = False
    images_per_second: float | None = None  # training steps after the first sync, all ranks


def train(config: TrainConfig, graph: nx.DiGraph | None = None) -> Result:
    """Train `config.arch`; `graph` is its built graph when the caller has one already."""
    process = Process(config.device)
    _check(config, process.world)
    claim = rundir.claim(config.out) if process.main else None
    try:
        graph = graph if graph is not None else resdsl.build(config.arch, **config.params)
        return Run(config, graph, process).run()
    except RuntimeError as error:
        raise process.peer_failure(error) or error
    finally:
        if claim:
            claim.release()


class Run:
    """One call of `train`: the model, its optimizer and schedule, the data, and where the
    loop has got to."""

    def __init__(self, config: TrainConfig, graph: nx.DiGraph, process: Process):
        self.config, self.process, self.recipe = config, process, config.recipe
        self.summary = summarize(graph)
        self.per_rank = self.recipe.batch // process.world
        memory.require(graph, process.device, batch=self.per_rank, training=True)
        torch.manual_seed(config.seed)  # the same initial weights on every rank
        self.model = from_graph(graph).to(process.device,
                                          memory_format=memory_format(config.channels_last))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=self.recipe.lr,
                                         momentum=self.recipe.momentum,
                                         weight_decay=self.recipe.weight_decay)
        self.schedule = PaperSchedule(self.optimizer, self.recipe.milestones,
                                      self.recipe.warmup_lr, self.recipe.warmup_until)
        self.step = 0
        self.notes: list[str] = []  # printed after the first line
        self.resumed = self._start()
        self.train_split, self.test_split = (split.to(process.device) for split in open_source(
            config.data, self.summary.input, self.summary.output[0], config.synthetic_size,
            config.seed))
        self.per_epoch = batches_per_epoch(self.train_split, self.per_rank, process.world)
        if self.per_epoch == 0:
            raise ResdslError(f"{len(self.train_split)} training images make no batch of "
                              f"{self.recipe.batch}", code="E707")
        self.train_step = TrainStep(self._forward(), self.optimizer, self.schedule,
                                    process.device, config.amp, config.channels_last)
        self.speed = SpeedMeter()
        self.pending: list[torch.Tensor] = []  # per step: summed loss, wrong answers, images
        self.rates: list[float] = []  # per step: its learning rate

    def _start(self) -> bool:
        """Continue from the newest intact checkpoint when asked to; otherwise make sure
        that `out` holds no earlier run, or clear it where that is asked for. True when
        it resumed."""
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
            return False
        state = found.state
        checkpoint.check_same_run(state, config.arch, config.params, found.path)
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.schedule.load_state_dict(state["schedule"])
            checkpoint.set_rng_state(state["rng"])
            self.step = int(state["step"])
        except (RuntimeError, KeyError, ValueError, TypeError) as error:
            raise ResdslError(f"--resume: {found.path.name} does not fit "
                              f"{self.summary.network}: {str(error).splitlines()[0]}",
                              Span(str(found.path), 0, 0), code="E707") from None
        self.notes += [f"skipped {path}: it {reason}; removed it"
                       for path, reason in found.skipped]
        if self.process.main:  # the run redoes those steps; kept, they would fill the slots
            for path, _ in found.skipped:
                checkpoint.remove(path)
        self.notes.append(f"resuming from {found.path} (step {self.step:,})")
        return True

    def _forward(self):
        """The model as the step calls it: under DDP across processes, compiled if asked."""
        network = self.model
        if self.process.world > 1:
            cuda = self.process.device.type == "cuda"
            network = DistributedDataParallel(
                network, device_ids=[self.process.device.index] if cuda else None)
        return torch.compile(network) if self.config.compile else network

    def run(self) -> Result:
        config, process = self.config, self.process
        self.progress = Progress(config.progress and process.main, self.recipe.steps)
        for line in [self._header(), *self.notes]:
            self._say(line)
        if self.step >= self.recipe.steps:
            self._say(f"{config.out} is at step {self.step:,}, and --steps is "
                      f"{self.recipe.steps:,}: nothing to train (raise --steps to go on)")
            return Result(self.step, None)
        self.log = MetricsLog(config.out, self.step if self.resumed else None,
                              config.tensorboard, self._say) if process.main else None
        try:
            with Interrupt() as interrupt:
                stopped = self._loop(interrupt)
            self.progress.close()
            if stopped:
                self._say(f"interrupted at step {self.step:,}: checkpoint saved in "
                          f"{config.out}; continue with --resume")
                return Result(self.step, None, interrupted=True)
            rate = self.speed.overall
            _, error, images = self._test()
            digest = process.replicas_digest(self.model)
            if digest:
                self._say(f"replicas identical: {process.world} ranks, weights sha256 "
                          f"{digest[:16]}")
            self._say(f"test error: {100 * error:.2f}% ({images:,} images) after "
                      f"{self.step:,} steps" + (f"; {rate:,.0f} img/s" if rate else ""))
            return Result(self.step, error, images_per_second=rate)
        finally:
            self.progress.close()
            if self.log:
                self.log.close()

    def _loop(self, interrupt: Interrupt) -> bool:
        """Train to the last step; True when an interrupt stopped it first."""
        config, process = self.config, self.process
        while self.step < self.recipe.steps:
            epoch, first = divmod(self.step, self.per_epoch)
            for x, y in batches(self.train_split, self.per_rank, config.seed, epoch,
                                process.rank, process.world, first, config.workers,
                                process.device):
                self.rates.append(self.schedule.get_last_lr()[0])
                self.pending.append(self.train_step(x, y))
                self.step += 1
                if self.step % config.log_every == 0 or self.step == self.recipe.steps:
                    if self._sync(interrupt.requested):
                        return True
                if self.step >= self.recipe.steps:
                    break
        return False

    def _sync(self, interrupted: bool) -> bool:
        """Record the window, then evaluate and checkpoint when due; True to stop."""
        config, step = self.config, self.step
        window = Window(step - len(self.pending) + 1,
                        self.process.sum(torch.stack(self.pending)).tolist(), self.rates)
        stop = self.process.any(interrupted)
        self.speed.tick(self.recipe.batch * len(window.rows))
        if self.log:
            self.log.train(window, self.speed.window)
        self.progress.update(step, (step - 1) // self.per_epoch + 1, window.loss, window.error,
                             window.rates[-1], self.speed.window,
                             self.speed.eta((self.recipe.steps - step) * self.recipe.batch))
        self._check_finite(window)
        self.schedule.observe(window.error)
        self.pending, self.rates = [], []
        if step % config.eval_every == 0 and step < self.recipe.steps:
            self._test()
        if stop or step % config.checkpoint_every == 0 or step == self.recipe.steps:
            self._save()
        return stop

    def _test(self) -> tuple[float, float, int]:
        config = self.config
        loss, error, images = evaluate(
            self.model, self.test_split, self.per_rank, self.process, seed=config.seed,
            amp=config.amp, channels_last=config.channels_last, workers=config.workers)
        if self.log:
            self.log.test(self.step, loss, error, images)
        self._say(f"step {self.step:,}: test error {100 * error:.2f}%, loss {loss:.4f}")
        return loss, error, images

    def _check_finite(self, window: Window) -> None:
        """Stop at the first non-finite loss, before it reaches a checkpoint. (fp16's
        scaler skips a step whose gradients overflow; the loss itself stays finite.)"""
        for i, (loss, _, _) in enumerate(window.rows):
            if not math.isfinite(loss):
                raise self._diverged(f"the loss is {loss} at step {window.first_step + i:,} "
                                     f"(learning rate {window.rates[i]:g})")

    def _diverged(self, what: str) -> ResdslError:
        saved = checkpoint.saved(self.config.out)
        kept = (f"the last checkpoint, {saved[0]}, was saved before it"
                if saved else "no checkpoint was saved")
        return ResdslError(f"training diverged: {what}; {kept}",
                           Span(str(self.config.out), 0, 0),
                           hint="lower --lr or add --warmup-lr, and start again with "
                                "--overwrite", code="E711")

    def _save(self) -> None:
        self.process.share_buffers(self.model)
        state = self.model.state_dict()
        finite = torch.stack([t.isfinite().all() for t in state.values()
                              if t.is_floating_point()]).all()
        if not finite:  # never a bad checkpoint in place of a good one
            raise self._diverged(f"the weights are not finite at step {self.step:,}")
        if self.process.main:
            config = self.config
            checkpoint.save(config.out, {
                "model": state, "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(), "step": self.step,
                "arch": str(Path(config.arch).resolve()), "params": config.params,
                "recipe": asdict(self.recipe)}, config.keep_checkpoints)
        self.process.barrier()

    def _say(self, text: str) -> None:
        if self.process.main:
            self.progress.message(text)

    def _header(self) -> str:
        """The first line: what trains, where, how, and where its records go."""
        config, summary = self.config, self.summary
        precision = {None: "fp32", "bf16": "bf16 autocast",
                     "fp16": "fp16 autocast with loss scaling"}[config.amp]
        options = ", ".join([precision] + ["channels-last"] * config.channels_last
                            + ["torch.compile"] * config.compile)
        records = [f"metrics {config.out / METRICS}",
                   f"checkpoints {config.out / checkpoint.PATTERN} every "
                   f"{config.checkpoint_every:,} steps, last {config.keep_checkpoints} kept"]
        if config.tensorboard:
            records.append(f"TensorBoard {config.out / TENSORBOARD}")
        return (f"training {summary.network}: {summary.params / 1e6:.2f}M "
                f"params, {summary.macs / 1e9:.2f} GMACs/image · {describe(self.process.device)}, "
                f"{options}, world size {self.process.world}, batch {self.recipe.batch} · "
                f"steps {self.step:,} to {self.recipe.steps:,} · " + " · ".join(records))


def _check(config: TrainConfig, world: int) -> None:
    if config.resume and config.overwrite:
        raise ResdslError("--resume continues the run in --out and --overwrite replaces it: "
                          "give one", code="E707")
    if config.resume not in (False, True, "auto"):
        raise ResdslError(f"resume must be False, True or 'auto', not {config.resume!r}",
                          code="E707")
    if config.keep_checkpoints < 1:
        raise ResdslError("--keep-checkpoints must be at least 1", code="E707")
    if config.recipe.batch % world:
        raise ResdslError(f"the batch of {config.recipe.batch} does not split over {world} "
                          "processes", hint="choose a batch that the process count divides",
                          code="E707")
    if config.checkpoint_every % config.log_every or config.eval_every % config.log_every:
        raise ResdslError("--checkpoint-every and --eval-every must be multiples of "
                          f"--log-every ({config.log_every})", code="E707")
