"""`resdsl train`: the real loaders on small files in the real formats, the paper's recipe,
exact resume and a checkpoint on Ctrl-C. (DDP with two processes on CPU, killed and
restarted, is in test_train_faults.py.)"""

import json
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from resdsl.errors import ResdslError  # noqa: E402
from resdsl.training import checkpoint  # noqa: E402
from resdsl.training.augment import draw_crops, pad_crop_flip  # noqa: E402
from resdsl.training.data import cifar10, image_folder  # noqa: E402
from resdsl.training.feed import EpochBatches, batches  # noqa: E402
from resdsl.training.loop import TrainConfig, train  # noqa: E402
from resdsl.training.recipe import Recipe, default_recipe  # noqa: E402
from resdsl.training.schedule import PaperSchedule  # noqa: E402
from tests.conftest import ARCHS, STUCK_AFTER_S, wait_for_metrics  # noqa: E402

TINY = ["--set", "n=1"]
CPU = torch.device("cpu")


def _write_cifar(folder: Path, per_batch: int = 16) -> None:
    """The official python archive's format: pickled dicts with b'data' and b'labels'."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"batch_label": name.encode(),
                 b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, per_batch)],
                 b"filenames": [f"{i}.png".encode() for i in range(per_batch)]}
        with (folder / name).open("wb") as handle:
            pickle.dump(batch, handle)


def test_cifar10_loader_reads_the_official_format(tmp_path):
    _write_cifar(tmp_path / "cifar")
    train_split, test_split = cifar10(tmp_path / "cifar")
    assert train_split.images.shape == (80, 3, 32, 32) and len(test_split) == 16
    with (tmp_path / "cifar" / "data_batch_2").open("rb") as handle:
        raw = pickle.load(handle, encoding="bytes")
    first = torch.from_numpy(raw[b"data"][0].reshape(3, 32, 32))
    assert torch.equal(train_split.images[16], first)  # channel-major rows, in file order
    assert train_split.labels[16] == raw[b"labels"][0]
    x, y = next(batches(test_split, 2, 0, 0, 0, 1, 0, 0, CPU))
    assert torch.allclose(x[0], test_split.images[0].float() / 255 - train_split.mean)


def test_cifar10_errors_name_the_file(tmp_path):
    _write_cifar(tmp_path / "cifar")
    (tmp_path / "cifar" / "data_batch_3").unlink()
    with pytest.raises(ResdslError, match="no CIFAR-10 batch 'data_batch_3'"):
        cifar10(tmp_path / "cifar")
    (tmp_path / "cifar" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ResdslError, match="data_batch_3 is not a CIFAR-10 python batch"):
        cifar10(tmp_path / "cifar")


def test_cifar_augmentation_pads_crops_and_flips():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32)
    a = pad_crop_flip(x, 4, draw_crops(2, 4, torch.Generator().manual_seed(5)))
    b = pad_crop_flip(x, 4, draw_crops(2, 4, torch.Generator().manual_seed(5)))
    assert torch.equal(a, b) and a.shape == x.shape
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(2):  # each output is a window of the padded image, maybe mirrored
        windows = [padded[i, :, dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)]
        assert any(torch.equal(a[i], w) or torch.equal(a[i], w.flip(-1)) for w in windows)


def test_image_folder_loader(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for part in ("train", "val"):
        for cls in ("cat", "dog"):
            (tmp_path / part / cls).mkdir(parents=True)
            for i in range(3):
                pixels = rng.integers(0, 256, (40 + i, 50, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / part / cls / f"{i}.png")
    (tmp_path / "train" / "dog" / "notes.txt").write_text("not an image")
    train_split, val_split = image_folder(tmp_path, crop=32)
    assert len(train_split) == 6 and train_split.labels.tolist() == [0, 0, 0, 1, 1, 1]
    x, y = next(batches(train_split, 2, 0, 0, 0, 1, 0, 0, CPU))
    assert x.shape == (2, 3, 32, 32) and len(y) == 2
    for workers in (0, 2):  # the same batches, whoever decodes them
        again, _ = next(batches(train_split, 2, 0, 0, 0, 1, 0, workers, CPU))
        assert torch.equal(x, again)
    assert [len(y) for _, y in batches(val_split, 4, 0, 0, 0, 1, 0, 0, CPU)] == [4, 2]
    with pytest.raises(ResdslError, match="has no class folders"):
        image_folder(tmp_path / "train")


def test_image_folder_trains(cli, tmp_path):
    from PIL import Image

    for part in ("train", "val"):
        for cls in range(2):
            (tmp_path / "img" / part / str(cls)).mkdir(parents=True)
            for i in range(4):
                Image.new("RGB", (36, 40), (120 * cls, 60, i)).save(
                    tmp_path / "img" / part / str(cls) / f"{i}.png")
    code, out, _ = cli("train", ARCHS / "cifar-resnet.arch", *TINY, "--data",
                       f"imagefolder:{tmp_path / 'img'}", "--steps", "2", "--batch", "4",
                       "--out", tmp_path / "run", "--log-every", "1", "--workers", "2",
                       "--no-progress")
    assert code == 0 and "test error:" in out and "(8 images)" in out


def test_the_papers_recipe_is_the_default():
    cifar = default_recipe(32, 20)
    assert (cifar.batch, cifar.lr, cifar.milestones, cifar.steps) == (128, 0.1, (32000, 48000),
                                                                       64000)
    assert (cifar.momentum, cifar.weight_decay, cifar.warmup_lr) == (0.9, 1e-4, None)
    assert default_recipe(32, 110).warmup_lr == 0.01
    imagenet = default_recipe(224, 50)
    assert imagenet.batch == 256 and imagenet.steps == 600_000


def _schedule(recipe):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=recipe.lr)
    return optimizer, PaperSchedule(optimizer, recipe.milestones, recipe.warmup_lr,
                                    recipe.warmup_until)


def _rates(optimizer, schedule, steps, errors):
    """The rate of each step, with the schedule stepped and told the training error as
    the loop does."""
    rates = []
    for error in errors[:steps]:
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
        schedule.observe(error)
    return rates


def test_the_schedule_is_a_torch_lr_scheduler_with_the_papers_milestones():
    cifar = default_recipe(32, 20)
    cifar.milestones = (3, 5)
    assert _rates(*_schedule(cifar), 7, [0.5] * 7) == \
        pytest.approx([0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    deep = default_recipe(32, 110)
    deep.milestones = (4,)
    errors = [0.9, 0.85, 0.7, 0.6, 0.5]
    # 0.01 until the error is under 80% (after step 3), then the milestones' rate
    assert _rates(*_schedule(deep), 5, errors) == pytest.approx([0.01, 0.01, 0.01, 0.1, 0.01])
    # its state goes into the checkpoint: a schedule restored mid-warm-up goes on the same
    optimizer, schedule = _schedule(deep)
    _rates(optimizer, schedule, 2, errors)
    state = (optimizer.state_dict(), schedule.state_dict())
    optimizer, schedule = _schedule(deep)
    optimizer.load_state_dict(state[0])
    schedule.load_state_dict(state[1])
    assert schedule.warming_up and _rates(optimizer, schedule, 3, errors[2:]) == \
        pytest.approx([0.01, 0.1, 0.01])


def _config(tmp_path, steps, resume=False, **extra):
    recipe = Recipe(batch=16, lr=0.1, milestones=(3,), steps=steps)
    return TrainConfig(arch=str(ARCHS / "cifar-resnet.arch"), recipe=recipe, data="synthetic",
                       out=tmp_path, params={"n": 1}, log_every=1, eval_every=1000,
                       checkpoint_every=2, resume=resume, synthetic_size=128, progress=False,
                       **extra)


def test_resume_continues_bit_for_bit(tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    train(_config(whole, steps=6))
    train(_config(parts, steps=3))  # stops at step 3, between checkpoints
    assert checkpoint.newest_intact(parts).state["step"] == 3
    train(_config(parts, steps=6, resume=True))
    a, b = checkpoint.newest_intact(whole).state, checkpoint.newest_intact(parts).state
    assert a["step"] == b["step"] == 6
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    def train_lines(folder):  # the first part's closing evaluation at step 3 is extra
        return [line for line in (folder / "metrics.jsonl").read_text().splitlines()
                if '"train"' in line]
    assert train_lines(whole) == train_lines(parts)
    # 112 training images make 7 batches of 16: the run crossed the milestone at step 3
    lrs = [json.loads(line)["lr"] for line in (parts / "metrics.jsonl").read_text().splitlines()
           if '"train"' in line]
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.01, 0.01, 0.01])


def test_warmup_ends_when_training_error_falls_below_the_threshold(tmp_path):
    config = _config(tmp_path, steps=12)
    config.recipe.milestones, config.recipe.warmup_lr, config.recipe.warmup_until = (), 0.01, 0.9
    train(config)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
               if '"train"' in line]
    first_fast = next(i for i, r in enumerate(records) if r["lr"] == 0.1)
    assert first_fast > 0 and all(r["lr"] == 0.01 for r in records[:first_fast])
    assert records[first_fast - 1]["error"] < 0.9


def test_ctrl_c_saves_a_checkpoint_and_resume_continues(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "resdsl", "train", str(ARCHS / "cifar-resnet.arch"),
               *TINY, "--data", "synthetic", "--out", str(out), "--batch", "16",
               "--log-every", "1", "--no-progress"]
    proc = subprocess.Popen(command + ["--steps", "100000"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for_metrics(out, 3, proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=STUCK_AFTER_S)
    assert proc.returncode == 130, stderr
    assert "interrupted at step" in stdout and "--resume" in stdout
    state = checkpoint.newest_intact(out).state
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert state["step"] == steps[-1] >= 3
    resumed = subprocess.run(command + ["--steps", str(state["step"] + 2), "--resume"],
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"after {state['step'] + 2} steps" in resumed.stdout


def test_input_errors(cli, tmp_path):
    code, _, err = cli("train", ARCHS / "cifar-resnet.arch", "--data", "mnist:x", "--out",
                       tmp_path)
    assert code == 1 and "unknown data source 'mnist:x'" in err
    code, _, err = cli("train", ARCHS / "cifar-resnet.arch", *TINY, "--data", "synthetic",
                       "--out", tmp_path / "none", "--resume")
    assert code == 1 and "there is no checkpoint in" in err
    code, _, err = cli("train", ARCHS / "cifar-resnet.arch", "--data", "cifar10:" +
                       str(tmp_path / "missing"), "--out", tmp_path)
    assert code == 1 and "no CIFAR-10 batch" in err


def test_epoch_batches_cover_the_split_once_per_epoch():
    from resdsl.training.data import synthetic

    split, test = synthetic((3, 8, 8), 10, size=160)
    seen = sum(EpochBatches(split, 10, 0, 0, 0, 1).batches, [])
    assert sorted(seen) == list(range(140))
    halves = [EpochBatches(split, 5, 0, 0, r, 2).batches for r in (0, 1)]
    assert not set(sum(halves[0], [])) & set(sum(halves[1], []))
    assert sorted(sum(EpochBatches(test, 7, 0, 0, 0, 1).batches, [])) == list(range(20))


def test_bf16_autocast_and_channels_last_train(tmp_path):
    config = _config(tmp_path, steps=2, amp="bf16", channels_last=True)
    result = train(config)
    assert result.step == 2 and result.test_error is not None
    assert checkpoint.newest_intact(tmp_path).state["model"]["conv1.conv.weight"].is_contiguous(
        memory_format=torch.channels_last)


def test_a_command_builds_the_graph_once(cli, tmp_path, monkeypatch):
    """`train` and `compile --check` read the file and run the passes once: the recipe,
    the memory check against the device that runs it, and the module share one graph."""
    import resdsl.api

    builds = []
    real_build = resdsl.api.build
    monkeypatch.setattr(resdsl.api, "build", lambda *a, **k: builds.append(a) or real_build(*a, **k))
    code, _, err = cli("train", ARCHS / "cifar-resnet.arch", *TINY, "--data", "synthetic",
                       "--out", tmp_path, "--steps", "2", "--batch", "8", "--log-every", "1",
                       "--eval-every", "2", "--checkpoint-every", "2", "--synthetic-size", "32",
                       "--no-progress")
    assert code == 0, err
    assert len(builds) == 1
    code, _, _ = cli("compile", ARCHS / "cifar-resnet.arch", *TINY, "--check")
    assert code == 0 and len(builds) == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_load_checks_memory_on_the_device_it_is_asked_for():
    import resdsl

    with pytest.raises(ResdslError, match="CUDA is not available"):
        resdsl.load(ARCHS / "cifar-resnet.arch", device="cuda")
    with resdsl.limits(memory="100MiB"), pytest.raises(ResdslError, match=r"error\[E608\]"):
        resdsl.load(ARCHS / "vgg16.arch", device="cpu")
    model = resdsl.load(ARCHS / "cifar-resnet.arch", n=1, device="cpu")
    assert next(model.parameters()).device.type == "cpu"
