"""What a long run meets, done for real: a forgotten --resume, two runs on one --out, a
diverging loss, damaged and crafted checkpoints, a torn metrics line, a full disk (a
tmpfs the test mounts), SIGKILL mid-run with dropout, a torchrun rank killed under
--max-restarts, and --out paths that cannot be written. Nothing is mocked."""

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from resdsl.backends.pytorch.runtime import from_graph  # noqa: E402
from resdsl.errors import ResdslError  # noqa: E402
from resdsl.training import checkpoint  # noqa: E402
from resdsl.training.loop import TrainConfig, train  # noqa: E402
from resdsl.training.recipe import Recipe  # noqa: E402
from tests.conftest import ARCHS, ROOT, STUCK_AFTER_S, wait_for_metrics  # noqa: E402

ARCH = str(ARCHS / "cifar-resnet.arch")
TINY = ["--set", "n=1", "--data", "synthetic", "--synthetic-size", "128", "--batch", "16",
        "--log-every", "1", "--checkpoint-every", "2", "--no-progress"]


def _command(out: Path, *extra, arch: str = ARCH) -> list[str]:
    return [sys.executable, "-m", "resdsl", "train", arch, *TINY, "--out", str(out), *extra]


def _run(out: Path, *extra, arch: str = ARCH) -> subprocess.CompletedProcess:
    return subprocess.run(_command(out, *extra, arch=arch), capture_output=True, text=True,
                          timeout=STUCK_AFTER_S, cwd=ROOT)


def _newest(out: Path) -> dict:
    return checkpoint.newest_intact(out).state


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _train_steps(out: Path) -> list[int]:
    return [r["step"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
            if r["split"] == "train"]


def _dropout_arch(folder: Path) -> str:
    """ResNet-8 with dropout before its classifier: resuming must repeat its masks."""
    path = folder / "dropout.arch"
    path.write_text(f'network dropout-net\nextends "{ARCH}"\nparam n = 1\n'
                    "head 1x1 : avgpool, dropout 0.5, fc classes, softmax\n")
    return str(path)


# --- the --out folder -------------------------------------------------------------------

def test_a_new_run_does_not_start_over_an_earlier_one(cli, tmp_path):
    assert cli("train", ARCH, *TINY, "--out", tmp_path, "--steps", "4")[0] == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    code, _, err = cli("train", ARCH, *TINY, "--out", tmp_path, "--steps", "4")
    assert code == 1 and f"{tmp_path}: error[E710]: --out {tmp_path} holds an earlier run " \
                          "(metrics.jsonl, checkpoint-00000004.pt" in err
    assert "--resume" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    code, out, err = cli("train", ARCH, *TINY, "--out", tmp_path, "--steps", "6", "--overwrite")
    assert code == 0 and "steps 0 to 6" in out, err
    assert _train_steps(tmp_path) == [1, 2, 3, 4, 5, 6]
    assert [p.name for p in checkpoint.saved(tmp_path)] == [
        "checkpoint-00000006.pt", "checkpoint-00000004.pt", "checkpoint-00000002.pt"]
    code, _, err = cli("train", ARCH, *TINY, "--out", tmp_path, "--resume", "--overwrite")
    assert code == 2 and "not allowed with argument --resume" in err
    metrics = (tmp_path / "metrics.jsonl").read_bytes()
    for steps in ("6", "4"):  # a finished run, resumed, trains nothing and records nothing
        code, out, err = cli("train", ARCH, *TINY, "--out", tmp_path, "--steps", steps,
                             "--resume")
        assert code == 0 and "is at step 6, and --steps is" in out and "nothing to train" in out
        assert (tmp_path / "metrics.jsonl").read_bytes() == metrics


def test_a_second_run_on_the_same_out_is_refused_while_the_first_runs(tmp_path):
    first = subprocess.Popen(_command(tmp_path, "--steps", "100000"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        wait_for_metrics(tmp_path, 3, first)
        for flag in ("--resume", "--overwrite"):
            second = _run(tmp_path, "--steps", "10", flag)
            assert second.returncode == 1, second.stderr
            assert (f"error[E710]: --out {tmp_path} is in use by another run "
                    f"(pid {first.pid})") in second.stderr
        assert first.poll() is None and (tmp_path / "metrics.jsonl").exists()
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=STUCK_AFTER_S)
    assert first.returncode == 130


def test_out_that_cannot_be_a_folder_is_a_located_error(cli, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    code, _, err = cli("train", ARCH, *TINY, "--out", "", "--steps", "2")
    assert code == 2 and "--out: give a folder, not an empty string" in err
    odd = tmp_path / "odd"
    (odd / "metrics.jsonl").mkdir(parents=True)
    (odd / "checkpoint-00000009.pt").mkdir()  # a folder is no checkpoint
    code, _, err = cli("train", ARCH, *TINY, "--out", odd, "--steps", "2", "--overwrite")
    assert code == 1 and f"error[E701]: cannot delete {odd / 'metrics.jsonl'}" in err, err
    under = a_file / "run"
    for out, why in ((a_file, f"--out {a_file} is a file, not a folder"),
                     (under, f"cannot write to --out {under}: {a_file} is a file")):
        code, _, err = cli("train", ARCH, *TINY, "--out", out, "--steps", "2")
        assert code == 1 and f"error[E701]: {why}" in err, err
        assert "Traceback" not in err and a_file.read_text() == "not a folder"


@contextmanager
def _mounted_tmpfs(folder: Path, options: str):
    """A tmpfs of its own at `folder`, or a skip where this machine will not mount one."""
    folder.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                                 capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("no mount command here")
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_read_only_out_is_a_located_error(cli, tmp_path):
    with _mounted_tmpfs(tmp_path / "ro", "size=1m,ro") as folder:
        code, _, err = cli("train", ARCH, *TINY, "--out", folder / "run", "--steps", "2")
    assert code == 1 and f"error[E701]: cannot write to --out {folder / 'run'}: " \
                          "Read-only file system" in err, err


# --- checkpoints ------------------------------------------------------------------------

def _config(out: Path, steps: int, **extra) -> TrainConfig:
    recipe = extra.pop("recipe", Recipe(batch=16, lr=0.1, milestones=(3,), steps=steps))
    return TrainConfig(arch=ARCH, recipe=recipe, data="synthetic", out=out, params={"n": 1},
                       log_every=1, eval_every=1000, checkpoint_every=2, synthetic_size=128,
                       progress=False, **extra)


def test_resume_passes_over_damaged_checkpoints_to_the_newest_intact_one(tmp_path, capsys):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    train(_config(whole, steps=8))
    train(_config(parts, steps=6))  # keeps 2, 4 and 6
    six, four, two = checkpoint.saved(parts)
    with six.open("r+b") as handle:  # four bytes overwritten mid-file
        handle.seek(six.stat().st_size // 2)
        handle.write(b"\xde\xad\xbe\xef")
    four.write_bytes(four.read_bytes()[:1000])  # truncated
    capsys.readouterr()
    train(_config(parts, steps=8, resume=True))
    out = capsys.readouterr().out
    assert f"skipped {six}: it is damaged: its sha256 is" in out
    assert f"skipped {four}: it is damaged" in out
    assert f"resuming from {two} (step 2)" in out and "steps 2 to 8" in out
    assert _same_weights(_newest(whole)["model"], _newest(parts)["model"])
    assert _train_steps(parts) == list(range(1, 9))
    # the damaged ones were removed: they take no slot that an intact one needs
    assert [checkpoint.read(p)["step"] for p in checkpoint.saved(parts)] == [8, 6, 4]


def test_a_checkpoint_without_a_checksum_or_a_key_is_passed_over(tmp_path):
    train(_config(tmp_path, steps=4))
    four, two = checkpoint.saved(tmp_path)
    four.with_suffix(".sha256").unlink()  # the run died between the two files
    state = torch.load(two, weights_only=True)
    del state["rng"]
    torch.save(state, two)
    two.with_suffix(".sha256").write_text(
        f"{hashlib.sha256(two.read_bytes()).hexdigest()}  {two.name}\n")
    with pytest.raises(ResdslError, match="no checkpoint in .* is intact") as error:
        train(_config(tmp_path, steps=6, resume=True))
    assert error.value.code == "E707"
    assert "checkpoint-00000004.pt has no readable checksum file" in error.value.message
    assert "checkpoint-00000002.pt lacks 'rng'" in error.value.message


def test_a_crafted_checkpoint_runs_no_code(tmp_path):
    train(_config(tmp_path, steps=2))
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    (path,) = checkpoint.saved(tmp_path)
    state = torch.load(path, weights_only=True)
    torch.save(dict(state, model=Payload()), path)
    path.with_suffix(".sha256").write_text(
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
    torch.load(path, weights_only=False)  # what resdsl used to do: it runs the payload
    assert marker.exists()
    marker.unlink()
    with pytest.raises(ResdslError, match="holds objects other than tensors") as error:
        train(_config(tmp_path, steps=4, resume=True))
    assert error.value.code == "E707" and not marker.exists()


def test_resume_auto_starts_afresh_then_continues(cli, tmp_path):
    code, out, err = cli("train", ARCH, *TINY, "--out", tmp_path, "--steps", "4",
                         "--resume", "auto")
    assert code == 0 and "steps 0 to 4" in out and "resuming" not in out, err
    code, out, err = cli("train", ARCH, *TINY, "--out", tmp_path, "--steps", "6",
                         "--resume", "auto")
    assert code == 0 and "steps 4 to 6" in out and "resuming from" in out, err
    code, _, err = cli("train", ARCH, *TINY, "--out", tmp_path / "typo", "--resume")
    assert code == 1 and "error[E707]: --resume: there is no checkpoint in" in err
    assert "--resume auto starts afresh" in err and not (tmp_path / "typo").exists()


# --- divergence -------------------------------------------------------------------------

def test_a_diverging_loss_stops_the_run_and_keeps_the_last_good_checkpoint(cli, tmp_path):
    code, out, err = cli("train", ARCH, *TINY, "--out", tmp_path, "--steps", "50",
                         "--lr", "1e30", "--checkpoint-every", "1")
    assert code == 1 and "error[E711]: training diverged: the loss is" in err, err
    assert "--lr" in err and "Traceback" not in err
    for path in checkpoint.saved(tmp_path):
        state = checkpoint.read(path)
        assert all(t.isfinite().all() for t in state["model"].values() if t.is_floating_point())
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["loss"] is None and records[-1]["step"] < 50
    assert _newest(tmp_path)["step"] < records[-1]["step"]


def test_divergence_after_the_warmup_leaves_the_warmup_checkpoints(tmp_path):
    recipe = Recipe(batch=16, lr=1e30, milestones=(), steps=40, warmup_lr=0.01,
                    warmup_until=0.9)
    with pytest.raises(ResdslError, match="training diverged: the loss is nan") as error:
        train(_config(tmp_path, steps=40, recipe=recipe))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    newest = checkpoint.saved(tmp_path)[0]
    state = checkpoint.read(newest)
    assert error.value.code == "E711" and f"the last checkpoint, {newest}" in error.value.message
    assert [r["lr"] for r in records[:state["step"]]] == [0.01] * state["step"]
    assert records[-1]["lr"] == 1e30 and records[-1]["loss"] is None
    assert all(t.isfinite().all() for t in state["model"].values() if t.is_floating_point())


def test_weights_that_go_non_finite_under_a_finite_loss_are_never_checkpointed(
        tmp_path, monkeypatch):
    """A BN's running mean made infinite after step 3: training mode normalises with the
    batch's statistics, so the loss stays finite, and only the weights check at the save
    of step 4 can stop the run. It does, with E711, and leaves step 2's checkpoint."""
    from resdsl.training import loop

    def corrupted(graph):
        model = from_graph(graph)
        bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
        calls = []

        def poison(module, inputs):
            calls.append(None)
            if len(calls) == 3:
                module.running_mean.fill_(float("inf"))
        bn.register_forward_pre_hook(poison)
        return model

    monkeypatch.setattr(loop, "from_graph", corrupted)
    with pytest.raises(ResdslError) as error:
        train(_config(tmp_path, steps=6))
    assert error.value.code == "E711"
    assert error.value.message.startswith("training diverged: the weights are not finite at "
                                          "step 4; the last checkpoint, ")
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(math.isfinite(r["loss"]) for r in records)  # the loss check saw nothing
    (saved,) = checkpoint.saved(tmp_path)
    assert checkpoint.read(saved)["step"] == 2


# --- metrics and the disk ---------------------------------------------------------------

def test_a_torn_metrics_line_is_dropped_on_resume(cli, tmp_path):
    assert cli("train", ARCH, *TINY, "--out", tmp_path, "--steps", "4")[0] == 0
    metrics = tmp_path / "metrics.jsonl"
    with metrics.open("a") as handle:
        handle.write('\n{"split": "train", "st')  # a blank line and half a record
    code, _, _ = cli("plot", tmp_path, "-o", tmp_path / "curves.svg")
    assert code == 0  # plot reads up to the torn line
    code, out, err = cli("train", ARCH, *TINY, "--out", tmp_path, "--steps", "6", "--resume")
    assert code == 0, err
    assert f"{metrics}:7: dropped a line that is not a whole record" in out
    assert _train_steps(tmp_path) == [1, 2, 3, 4, 5, 6]


def _fill(folder: Path, leave: int) -> Path:
    """Fill the file system of `folder` until `leave` bytes are free."""
    free = os.statvfs(folder)
    filler = folder / "filler"
    filler.write_bytes(b"\0" * max(free.f_bavail * free.f_frsize - leave, 0))
    return filler


def test_a_full_disk_loses_nothing(tmp_path):
    with _mounted_tmpfs(tmp_path / "disk", "size=8m") as disk:
        out = disk / "run"
        assert _run(out, "--steps", "4").returncode == 0
        filler = _fill(disk, leave=8 * 1024)
        saving = _run(out, "--steps", "100", "--resume")  # no room for checkpoint 6
        assert saving.returncode == 1, saving.stderr
        assert (f"error[E701]: cannot write {out / 'checkpoint-00000006.pt'}: "
                "No space left on device") in saving.stderr
        assert not list(out.glob(".*.tmp")) and _newest(out)["step"] == 4
        appending = _run(out, "--steps", "100000", "--checkpoint-every", "100000", "--resume")
        assert appending.returncode == 1, appending.stderr
        assert (f"error[E701]: cannot append to {out / 'metrics.jsonl'}: "
                "No space left on device") in appending.stderr
        assert "Traceback" not in saving.stderr + appending.stderr
        filler.unlink()
        resumed = _run(out, "--steps", "8", "--resume")
        assert resumed.returncode == 0, resumed.stderr
        assert "resuming from" in resumed.stdout and _train_steps(out) == list(range(1, 9))


# --- processes killed -------------------------------------------------------------------

def test_sigkill_at_any_step_resumes_bit_for_bit_with_dropout(tmp_path):
    arch = _dropout_arch(tmp_path)
    whole = _run(tmp_path / "whole", "--steps", "60", arch=arch)
    assert whole.returncode == 0, whole.stderr
    parts = tmp_path / "parts"
    killed = subprocess.Popen(_command(parts, "--steps", "60", arch=arch), cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_metrics(parts, 5, killed)
    killed.kill()
    assert killed.wait() == -signal.SIGKILL
    assert _newest(parts)["step"] < 60
    resumed = _run(parts, "--steps", "60", "--resume", arch=arch)
    assert resumed.returncode == 0, resumed.stderr
    assert _same_weights(_newest(tmp_path / "whole")["model"], _newest(parts)["model"])
    assert _train_steps(parts) == list(range(1, 61))


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1]
                                            .split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _rank_of(pid: int) -> int | None:
    try:
        environment = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return None
    ranks = [int(v[5:]) for v in environment if v.startswith(b"RANK=")]
    return ranks[0] if ranks else None


# A store of its own for each restart: torchrun's shared one can hand a restarted rank its
# peer's address from the attempt before (pytorch/pytorch#135712), and it cannot connect.
RESTARTABLE = {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_torchrun_restarts_a_killed_rank_and_resume_auto_continues(tmp_path):
    """Two CPU processes under DDP (gloo); rank 1 is killed after a checkpoint. The
    survivor reports the lost peer (E712), torchrun restarts both, and they continue from
    the checkpoint to end with identical weights."""
    out = tmp_path / "ddp"
    agent = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--max-restarts", "1", "--standalone",
         "-m", "resdsl", "train", ARCH, "--set", "n=1", "--data", "synthetic",
         "--synthetic-size", "256", "--out", str(out), "--steps", "300", "--batch", "16",
         "--log-every", "2", "--checkpoint-every", "4", "--device", "cpu", "--no-progress",
         "--resume", "auto"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1", **RESTARTABLE),
        start_new_session=True)
    try:
        wait_for_metrics(out, 9, agent)
        (victim,) = [pid for pid in _children(agent.pid) if _rank_of(pid) == 1]
        os.kill(victim, signal.SIGKILL)
        stdout, stderr = agent.communicate(timeout=STUCK_AFTER_S)
    finally:  # a failed restart must not leave the agent and its workers behind
        with suppress(ProcessLookupError):
            os.killpg(agent.pid, signal.SIGKILL)
    assert agent.returncode == 0, stderr
    assert "resuming from" in stdout and "replicas identical: 2 ranks" in stdout
    assert stdout.count("test error:") == 1  # rank 0 alone reports, once, at the end
    assert checkpoint.newest_intact(out).state["step"] == 300
    assert "error[E712]: rank 0 lost the other processes of the run" in stderr
    assert "internal error" not in stderr
    assert _train_steps(out) == list(range(1, 301))


RANK_SCRIPT = """
import os, sys
from pathlib import Path
from resdsl.training.loop import TrainConfig, train
from resdsl.training.recipe import Recipe
train(TrainConfig(arch=sys.argv[1], recipe=Recipe(batch=16, lr=0.1, milestones=(3,), steps=4),
                  data="synthetic", out=Path(sys.argv[2]), params={"n": 1}, log_every=1,
                  checkpoint_every=2, synthetic_size=64, device="cpu", progress=False))
threads = sorted((t / "comm").read_text().strip() for t in Path("/proc/self/task").iterdir())
(Path(sys.argv[3]) / f"threads-{os.environ['RANK']}").write_text(" ".join(threads))
"""


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc")
def test_a_ddp_rank_ends_its_collective_threads_before_the_interpreter_exits(tmp_path):
    """The cause of the aborts at exit under load: gloo's worker threads, still alive when
    the interpreter shuts down, abort the process if they release a tensor then. Once
    train() returns, no worker of the group may be left."""
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
         str(script), ARCH, str(tmp_path / "ddp"), str(tmp_path)], capture_output=True, text=True,
        timeout=STUCK_AFTER_S,
        cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT)))
    assert run.returncode == 0, run.stderr
    threads = [(tmp_path / f"threads-{rank}").read_text().split() for rank in (0, 1)]
    assert all("python" in names and "pt_gloo_runloop" not in names for names in threads), threads
