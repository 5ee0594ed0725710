"""The training loop: one process, or one of many under torchrun (DistributedDataParallel,
gloo on CPU, NCCL on GPU). Rank 0 alone logs and checkpoints.

The loop synchronises with the host every `log_every` steps, not every step: there it
gathers the window's per-step loss and error from all ranks, writes them, updates the
progress line, ends the warm-up, checks for an interrupt, evaluates and checkpoints.
Checkpoints fall on these steps, so a resumed run repeats the uninterrupted one exactly.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import networkx as nx
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

import resdsl
from resdsl.backends.pytorch import memory
from resdsl.backends.pytorch.runtime import from_graph
from resdsl.backends.summary import summarize
from resdsl.errors import ResdslError, Span
from resdsl.output import write_atomic
from resdsl.training import checkpoint
from resdsl.training.data import EpochBatches, batches_per_epoch, cifar10, image_folder, synthetic
from resdsl.training.recipe import Recipe, learning_rate

EXIT_INTERRUPTED = 130


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
    device: str = "auto"
    amp: str | None = None  # "bf16" or "fp16"
    channels_last: bool = False
    compile: bool = False
    workers: int = 0
    resume: bool = False
    synthetic_size: int = 1024
    progress: bool = True


@dataclass
class Result:
    step: int
    test_error: float | None
    interrupted: bool = False
    images_per_second: float | None = None  # training steps after the first sync, all ranks


class Process:
    """Where this process runs: its rank among `world`, and its device."""

    def __init__(self, requested: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if requested == "auto":
            requested = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
        elif requested == "cuda" and self.world > 1:
            requested = f"cuda:{local}"
        from resdsl.backends.pytorch.check import resolve_device

        self.device = resolve_device(requested)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            dist.all_reduce(tensor)
        return tensor

    def share_buffers(self, model: torch.nn.Module) -> None:
        """BN's running statistics from rank 0, as DDP shares them before each forward;
        after the last step each rank would otherwise keep those of its own batch."""
        if self.world > 1:
            for buffer in model.buffers():
                dist.broadcast(buffer, 0)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


class Interrupt:
    """The first SIGINT or SIGTERM asks the loop to save and stop at its next sync; a
    second one stops at once."""

    def __init__(self):
        self.requested = False
        self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signum, self.previous[signum])

    def restore(self) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


def load_data(config: TrainConfig, input_shape, classes: int):
    kind, _, where = config.data.partition(":")
    if kind == "cifar10" and where:
        return cifar10(where)
    if kind == "imagefolder" and where:
        return image_folder(where, crop=input_shape[-1])
    if kind == "synthetic":
        return synthetic(tuple(input_shape), classes, size=config.synthetic_size, seed=config.seed)
    raise ResdslError(f"unknown data source '{config.data}'",
                      hint="use cifar10:DIR, imagefolder:DIR or synthetic", code="E706")


def train(config: TrainConfig, graph: nx.DiGraph | None = None) -> Result:
    """Train `config.arch`; `graph` is its built graph when the caller has one already."""
    process = Process(config.device)
    recipe = config.recipe
    if recipe.batch % process.world:
        raise ResdslError(f"the batch of {recipe.batch} does not split over {process.world} "
                          "processes", hint="choose a batch that the process count divides",
                          code="E707")
    if config.checkpoint_every % config.log_every or config.eval_every % config.log_every:
        raise ResdslError("--checkpoint-every and --eval-every must be multiples of "
                          f"--log-every ({config.log_every})", code="E707")
    graph = graph if graph is not None else resdsl.build(config.arch, **config.params)
    summary = summarize(graph)
    memory.require(graph, process.device, batch=recipe.batch // process.world, training=True)
    torch.manual_seed(config.seed)  # the same initial weights on every rank
    model = from_graph(graph)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(process.device, memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)
    step, warming_up = 0, recipe.warmup_lr is not None
    if config.resume:
        state = checkpoint.load(config.out)
        _check_same_run(state, config)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, warming_up = state["step"], state["warming_up"]
    network = (DistributedDataParallel(model, device_ids=[process.device.index]
                                       if process.device.type == "cuda" else None)
               if process.world > 1 else model)
    forward = torch.compile(network) if config.compile else network
    train_split, test_split = load_data(config, summary.input, summary.output[0])
    per_rank = recipe.batch // process.world
    per_epoch = batches_per_epoch(train_split, per_rank, process.world)
    if per_epoch == 0:
        raise ResdslError(f"{len(train_split)} training images make no batch of {recipe.batch}",
                          code="E707")
    log = Log(config, process, step, total=recipe.steps)
    autocast = _autocast(config, process.device)
    scaler = torch.amp.GradScaler(enabled=config.amp == "fp16" and process.device.type == "cuda")
    interrupt = Interrupt()
    window: list[torch.Tensor] = []  # per step: summed loss, wrong answers, images
    started = time.perf_counter()
    speed = Speedometer()
    try:
        while step < recipe.steps and not log.stopped:
            epoch, first = divmod(step, per_epoch)
            batches = EpochBatches(train_split, per_rank, config.seed, epoch, process.rank,
                                   process.world, first)
            loader = DataLoader(batches, batch_size=None, num_workers=config.workers,
                                pin_memory=process.device.type == "cuda")
            for x, y in loader:
                lr = learning_rate(recipe, step, warming_up)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                x = x.to(process.device, non_blocking=True, memory_format=memory_format)
                y = y.to(process.device, non_blocking=True)
                with autocast:
                    out = forward(x)
                    loss = torch.nn.functional.cross_entropy(out, y)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                step += 1
                window.append(torch.stack([loss.detach().float() * len(y),
                                           (out.argmax(1) != y).sum().float(),
                                           torch.tensor(float(len(y)), device=out.device)]))
                if step % config.log_every == 0 or step == recipe.steps:
                    stats = process.sum(torch.stack(window)).cpu()
                    flags = process.sum(torch.tensor([float(interrupt.requested)],
                                                     device=process.device)).item()
                    error = (stats[:, 1].sum() / stats[:, 2].sum()).item()
                    if warming_up and error < recipe.warmup_until:
                        warming_up = False
                    speed.sync(recipe.batch * len(window))
                    log.train(step, stats, lr, recipe.batch * len(window)
                              / (time.perf_counter() - started))
                    window, started = [], time.perf_counter()
                    if step % config.eval_every == 0 and step < recipe.steps:
                        log.test(step, evaluate(model, test_split, per_rank, process, config))
                    if flags or step % config.checkpoint_every == 0 or step == recipe.steps:
                        _save(config, process, model, optimizer, step, warming_up)
                    if flags:
                        log.stopped = True
                        break
                if step >= recipe.steps:
                    break
        if log.stopped:
            log.message(f"interrupted at step {step:,}: checkpoint saved in {config.out}; "
                        f"continue with --resume")
            return Result(step, None, interrupted=True)
        rate = speed.rate()
        error = evaluate(model, test_split, per_rank, process, config)
        log.test(step, error)
        _check_replicas(model, process, log)
        log.message(f"test error: {100 * error[1]:.2f}% ({int(error[2]):,} images) after "
                    f"{step:,} steps" + (f"; {rate:,.0f} img/s" if rate else ""))
        return Result(step, error[1], images_per_second=rate)
    finally:
        interrupt.restore()
        log.close()


class Speedometer:
    """Training images per second, from the first sync on (compilation and the first
    steps' allocations are left out), evaluations and checkpoints included."""

    def __init__(self):
        self.start: float | None = None
        self.images = 0

    def sync(self, images: int) -> None:
        if self.start is None:
            self.start = time.perf_counter()
        else:
            self.images += images

    def rate(self) -> float | None:
        if self.start is None or not self.images:
            return None
        return self.images / (time.perf_counter() - self.start)


def evaluate(model, split, batch: int, process: Process, config: TrainConfig):
    """(mean loss, error, images) on the test split, shared among the ranks."""
    process.share_buffers(model)
    model.eval()
    total = torch.zeros(3, dtype=torch.float64)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    batches = EpochBatches(split, batch, config.seed, 0, process.rank, process.world)
    with torch.no_grad(), _autocast(config, process.device):
        for x, y in DataLoader(batches, batch_size=None, num_workers=config.workers):
            out = model(x.to(process.device, memory_format=memory_format)).float()
            y = y.to(process.device)
            total += torch.tensor([torch.nn.functional.cross_entropy(out, y, reduction="sum")
                                   .item(), (out.argmax(1) != y).sum().item(), len(y)],
                                  dtype=torch.float64)
    model.train()
    total = process.sum(total.to(process.device)).cpu()
    return (total[0] / total[2]).item(), (total[1] / total[2]).item(), total[2].item()


def _autocast(config: TrainConfig, device: torch.device):
    if config.amp is None:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype={"bf16": torch.bfloat16,
                                              "fp16": torch.float16}[config.amp])


def _save(config, process, model, optimizer, step, warming_up) -> None:
    process.share_buffers(model)
    if process.main:
        checkpoint.save(config.out, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
            "warming_up": warming_up, "arch": str(config.arch), "params": config.params,
            "recipe": asdict(config.recipe)})
    process.barrier()


def _check_same_run(state: dict, config: TrainConfig) -> None:
    if (Path(state["arch"]).name, state["params"]) != (Path(config.arch).name, config.params):
        raise ResdslError(f"--resume: the checkpoint in {config.out} is of {state['arch']} "
                          f"{state['params'] or ''}, not {config.arch} {config.params or ''}",
                          Span(str(config.out / checkpoint.NAME), 0, 0), code="E707")


def _check_replicas(model, process: Process, log: "Log") -> None:
    """Under DDP every rank must end with the same weights; say so, or fail loudly."""
    if process.world == 1:
        return
    process.share_buffers(model)
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digests = [None] * process.world
    dist.all_gather_object(digests, digest.hexdigest())
    if len(set(digests)) != 1:
        raise RuntimeError(f"the {process.world} replicas ended with different weights")
    log.message(f"replicas identical: {process.world} ranks, weights sha256 {digests[0][:16]}")


class Log:
    """Rank 0's output: a progress line on stderr, and metrics.jsonl (one line per step
    and per evaluation). On resume, lines after the checkpoint's step are dropped."""

    def __init__(self, config: TrainConfig, process: Process, step: int, total: int):
        self.active, self.total, self.stopped = process.main, total, False
        self.tty = config.progress and sys.stderr.isatty()
        self.progress = config.progress
        self.handle = None
        if not self.active:
            return
        config.out.mkdir(parents=True, exist_ok=True)
        path = config.out / "metrics.jsonl"
        if config.resume and path.exists():
            kept = [line for line in path.read_text().splitlines(keepends=True)
                    if json.loads(line)["step"] <= step]
            write_atomic(path, "".join(kept))
        elif path.exists():
            path.unlink()
        self.handle = path.open("a")

    def train(self, step: int, stats: torch.Tensor, lr: float, speed: float) -> None:
        if not self.active:
            return
        first = step - len(stats) + 1
        for i, (loss, wrong, count) in enumerate(stats.tolist()):
            self._write(split="train", step=first + i, loss=loss / count, error=wrong / count,
                        lr=lr)
        loss = (stats[:, 0].sum() / stats[:, 2].sum()).item()
        accuracy = 1 - (stats[:, 1].sum() / stats[:, 2].sum()).item()
        self.handle.flush()
        if self.progress:
            done = int(24 * step / self.total)
            line = (f"step {step:>{len(str(self.total))}}/{self.total} "
                    f"[{'#' * done}{'.' * (24 - done)}] loss {loss:.3f} "
                    f"acc {100 * accuracy:5.1f}% lr {lr:g} {speed:,.0f} img/s")
            print(("\r" + line) if self.tty else line, end="" if self.tty else "\n",
                  file=sys.stderr, flush=True)

    def test(self, step: int, result) -> None:
        if self.active:
            loss, error, count = result
            self._write(split="test", step=step, loss=loss, error=error, images=int(count))
            self.handle.flush()
            self.message(f"step {step:,}: test error {100 * error:.2f}%, loss {loss:.4f}",
                         stream=sys.stderr)

    def message(self, text: str, stream=None) -> None:
        if self.active:
            if self.tty:
                print(file=sys.stderr)
            print(text, file=stream or sys.stdout, flush=True)

    def _write(self, **record) -> None:
        for key, value in record.items():
            if isinstance(value, float) and not math.isfinite(value):
                record[key] = None
        self.handle.write(json.dumps(record) + "\n")

    def close(self) -> None:
        if self.handle:
            self.handle.close()
