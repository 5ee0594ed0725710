"""The training loop, one process of one or many (torchrun): it joins the pieces.

config.py (what is asked) → process.py (rank, device, collectives, signals) → data.py
(sources) → feed.py (batches on the device, in a fixed order) with augment.py → step.py
(one step on the device) → schedule.py (the learning rate) → evaluate.py → metrics.py
(metrics.jsonl, TensorBoard, speed) and progress.py (what a user watches) → resume.py
(where a run starts, what each save holds) over checkpoint.py (checked files, exact
resume), all in the --out folder that rundir.py holds for the run.

The loop syncs with the host every `log_every` steps, not every step: there it gathers
the window's per-step loss and error from all ranks, records them, updates the progress
line, ends the warm-up, checks for an interrupt and a diverged loss, evaluates and
checkpoints. Checkpoints fall on these steps, so a resumed run repeats the uninterrupted
one exactly.
"""

from __future__ import annotations

import math

import networkx as nx
import torch
from torch.nn.parallel import DistributedDataParallel

from resdsl.backends.pytorch import memory
from resdsl.backends.pytorch.devices import describe
from resdsl.backends.pytorch.runtime import from_graph
from resdsl.backends.summary import summarize
from resdsl.errors import ResdslError
from resdsl.passes.pipeline import build
from resdsl.training import checkpoint, rundir
from resdsl.training.config import Result, TrainConfig, check
from resdsl.training.data import fit_classes, open_source
from resdsl.training.evaluate import evaluate
from resdsl.training.feed import batches, batches_per_epoch
from resdsl.training.metrics import METRICS, TENSORBOARD, MetricsLog, SpeedMeter, Window
from resdsl.training.process import Interrupt, Process
from resdsl.training.progress import Progress
from resdsl.training.resume import RunState
from resdsl.training.schedule import PaperSchedule
from resdsl.training.step import TrainStep, memory_format


def train(config: TrainConfig, graph: nx.DiGraph | None = None) -> Result:
    """Train `config.arch`; `graph` is its built graph when the caller has one already."""
    with Process(config.device) as process:
        check(config, process.world)
        claim = rundir.claim(config.out) if process.main else None
        try:
            graph = graph if graph is not None else build(config.arch, **config.params)
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
        memory.require(graph, process.device, batch=self.per_rank, training=True,
                       optimizer="sgd", amp=config.amp)
        torch.manual_seed(config.seed)  # the same initial weights on every rank
        self.model = from_graph(graph).to(process.device,
                                          memory_format=memory_format(config.channels_last))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=self.recipe.lr,
                                         momentum=self.recipe.momentum,
                                         weight_decay=self.recipe.weight_decay)
        self.schedule = PaperSchedule(self.optimizer, self.recipe.milestones,
                                      self.recipe.warmup_lr, self.recipe.warmup_until)
        self.state = RunState(config, process, self.model, self.optimizer, self.schedule)
        resumed_at, self.notes = self.state.start(self.summary.network)  # notes: after line 1
        self.resumed, self.step = resumed_at is not None, resumed_at or 0
        train, test = open_source(config.data, self.summary.input, self.summary.output[0],
                                  config.synthetic_size, config.seed)
        fit_classes(train, self.summary.output[0], config.data, self.summary.network,
                    code="E706", warn=process.main)
        test = test.head(config.test_images) if config.test_images else test
        self.train_split, self.test_split = train.to(process.device), test.to(process.device)
        self.per_epoch = batches_per_epoch(self.train_split, self.per_rank, process.world)
        if self.per_epoch == 0:
            raise ResdslError(f"{len(self.train_split)} training images make no batch of "
                              f"{self.recipe.batch}", code="E707")
        self.train_step = TrainStep(self._forward(), self.optimizer, self.schedule,
                                    process.device, config.amp, config.channels_last)
        self.speed = SpeedMeter()
        self.pending: list[torch.Tensor] = []  # per step: summed loss, wrong answers, images
        self.rates: list[float] = []  # per step: its learning rate

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
            self.state.save(self.step)
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
                raise self.state.diverged(f"the loss is {loss} at step {window.first_step + i:,} "
                                     f"(learning rate {window.rates[i]:g})")

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

