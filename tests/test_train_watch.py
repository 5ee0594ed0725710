"""What a user of `resdsl train` sees: the --device rule, the first line, the progress
bar on a real terminal (a pty) and plain lines when piped, TensorBoard events read back
with TensorBoard's own reader, and `resdsl plot` drawing real runs."""

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

torch = pytest.importorskip("torch")

from resdsl.backends.pytorch.devices import resolve_device  # noqa: E402
from resdsl.errors import ResdslError  # noqa: E402
from tests.conftest import ARCHS, ROOT, STUCK_AFTER_S  # noqa: E402

RUN = ["train", str(ARCHS / "cifar-resnet.arch"), "--set", "n=1", "--data", "synthetic",
       "--synthetic-size", "128", "--batch", "16", "--steps", "20", "--log-every", "10",
       "--eval-every", "20", "--checkpoint-every", "10"]


def test_device_spellings():
    assert resolve_device("cpu") == resolve_device(" CPU ") == torch.device("cpu")
    for wrong in ("gpu", "cuda:x", "cuda:-1", "mps", "meta", ""):
        with pytest.raises(ResdslError, match="unknown device") as error:
            resolve_device(wrong)
        assert error.value.code == "E704" and "auto, cpu, cuda or cuda:N" in error.value.hint
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        assert resolve_device("auto") == resolve_device("cuda") == torch.device("cuda", 0)
        assert resolve_device("cuda", local_rank=count - 1).index == count - 1
        with pytest.raises(ResdslError, match=f"this machine has {count} GPU"):
            resolve_device(f"cuda:{count}")
    else:
        assert resolve_device("auto") == torch.device("cpu")
        for spelling in ("cuda", "cuda:0", "cuda:3"):
            with pytest.raises(ResdslError, match="CUDA is not available"):
                resolve_device(spelling)


def test_a_wrong_device_is_a_clear_error_in_every_command(cli, tmp_path):
    for command in (RUN + ["--out", str(tmp_path)],
                    ["compile", str(ARCHS / "cifar-resnet.arch"), "--check"]):
        code, out, err = cli(*command, "--device", "gpu")
        assert code == 1 and "error[E704]: unknown device 'gpu'" in err, err
        assert "Traceback" not in err and not list(tmp_path.glob("checkpoint-*"))


def test_the_first_line_says_what_trains_where_and_where_records_go(cli, tmp_path):
    code, out, err = cli(*RUN, "--out", tmp_path, "--no-progress", "--device", "cpu",
                         "--amp", "bf16", "--channels-last")
    assert code == 0, err
    first = out.splitlines()[0]
    for part in ("training cifar-resnet[n=1]", "0.08M params", "GMACs/image", "cpu (",
                 "bf16 autocast, channels-last", "world size 1", "batch 16",
                 f"metrics {tmp_path / 'metrics.jsonl'}",
                 f"checkpoints {tmp_path / 'checkpoint-*.pt'} every 10 steps, last 3 kept"):
        assert part in first, (part, first)
    assert err == ""  # --no-progress


def test_piped_progress_is_one_plain_line_per_sync(tmp_path):
    result = subprocess.run([sys.executable, "-m", "resdsl", *RUN, "--out", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert [line.split(" · ")[0] for line in lines] == ["step 10/20", "step 20/20"]
    # 112 training images make 7 batches of 16: step 10 is in epoch 2
    assert lines[0].startswith("step 10/20 · epoch 2 · loss ")
    for field in ("train error ", "% · lr 0.1 · ", " img/s · ETA "):
        assert all(field in line for line in lines), field
    assert "\r" not in result.stderr


def test_progress_on_a_terminal_is_a_bar_that_redraws(tmp_path):
    """The real thing: stderr is a pseudo-terminal of 120 columns."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "resdsl", *RUN, "--out", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=follower, cwd=ROOT)
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the follower closed
            break
        if not chunk:
            break
        screen += chunk
    stdout = process.communicate(timeout=STUCK_AFTER_S)[0].decode()
    os.close(leader)
    assert process.returncode == 0
    screen = screen.decode()
    frames = [frame for frame in screen.split("\r") if frame.startswith("step 20/20 ")]
    assert frames and "█" in frames[-1] and "ETA 0:00:00" in frames[-1]
    assert "epoch 3 · loss " in frames[-1] and " img/s" in frames[-1]
    assert "test error:" in stdout and "step 20/20" not in stdout


def test_tensorboard_events_beside_metrics(cli, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    code, _, err = cli(*RUN, "--out", tmp_path, "--no-progress", "--tensorboard")
    assert code == 0, err
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"train/loss", "train/error", "train/lr", "test/error", "test/loss"} <= set(tags)
    assert [e.step for e in events.Scalars("train/loss")] == [10, 20]
    test = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
            if '"test"' in line]
    assert events.Scalars("test/error")[-1].value == pytest.approx(test[-1]["error"])


def test_plot_draws_the_curves_of_several_runs(cli, tmp_path):
    pytest.importorskip("matplotlib")
    for name, arch in (("plain", "cifar-plain.arch"), ("residual", "cifar-resnet.arch")):
        code, _, err = cli("train", ARCHS / arch, *RUN[2:], "--out", tmp_path / name,
                           "--no-progress")
        assert code == 0, err
    code, out, err = cli("plot", tmp_path / "plain", tmp_path / "residual" / "metrics.jsonl",
                         "-o", tmp_path / "curves.png", "--title", "CIFAR, n=1")
    assert code == 0, err
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.startswith("plain: test error ") and "\nresidual: test error " in out
    code, _, _ = cli("plot", tmp_path / "plain", "-o", tmp_path / "curves.svg")
    assert code == 0 and (tmp_path / "curves.svg").read_text().lstrip().startswith("<?xml")


def test_plot_errors_point_at_the_file(cli, tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text('{"split": "train", "step": 1, "error": 0.5}\nnot json\n')
    code, _, err = cli("plot", tmp_path, "-o", tmp_path / "x.png")
    assert code == 1 and f"{metrics}:2:1: error[E709]: line 2 is not a metrics record" in err
    code, _, err = cli("plot", tmp_path / "nowhere", "-o", tmp_path / "x.png")
    assert code == 1 and "error[E709]" in err and "the --out folder" in err
    code, _, err = cli("plot", tmp_path, "-o", tmp_path / "x.jpg")
    assert code == 1 and "error[E701]: cannot tell the format" in err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.jpg").exists()
