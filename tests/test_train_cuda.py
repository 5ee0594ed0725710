"""`resdsl train` and `compile --check` on a GPU, every --device spelling and every
precision and layout option: real CUDA runs, skipped on a machine without one."""

import pytest

torch = pytest.importorskip("torch")

from tests.conftest import ARCHS  # noqa: E402

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

SMOKE = ["--set", "n=1", "--data", "synthetic", "--synthetic-size", "256", "--batch", "32",
         "--steps", "8", "--log-every", "4", "--eval-every", "8", "--checkpoint-every", "8",
         "--no-progress"]


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "auto"])
def test_every_device_spelling_trains_on_the_gpu(cli, tmp_path, device):
    code, out, err = cli("train", ARCHS / "cifar-resnet.arch", *SMOKE, "--out", tmp_path,
                         "--device", device)
    assert code == 0, err
    assert f"cuda:0 ({torch.cuda.get_device_name(0)})" in out.splitlines()[0]
    assert "test error:" in out


@pytest.mark.parametrize("options", [[], ["--amp", "bf16"], ["--amp", "fp16"],
                                     ["--channels-last"], ["--compile"],
                                     ["--amp", "bf16", "--channels-last", "--compile"]],
                         ids=["fp32", "bf16", "fp16", "channels-last", "compile", "all"])
def test_precisions_and_layouts_train_on_the_gpu(cli, tmp_path, options):
    from resdsl.training import checkpoint

    code, out, err = cli("train", ARCHS / "cifar-resnet.arch", *SMOKE, "--out", tmp_path,
                         "--device", "cuda", *options)
    assert code == 0, err
    state = checkpoint.newest_intact(tmp_path).state
    assert state["step"] == 8
    weights = state["model"]["conv1.conv.weight"]
    assert weights.dtype == torch.float32 and torch.isfinite(weights).all()
    if "--channels-last" in options:
        assert weights.is_contiguous(memory_format=torch.channels_last)


def test_a_gpu_that_is_not_there_is_a_clear_error(cli, tmp_path):
    count = torch.cuda.device_count()
    code, _, err = cli("train", ARCHS / "cifar-resnet.arch", *SMOKE, "--out", tmp_path,
                       "--device", f"cuda:{count}")
    assert code == 1 and f"error[E704]: --device cuda:{count}: this machine has {count}" in err


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "auto"])
def test_check_on_the_gpu(cli, device):
    code, out, err = cli("compile", ARCHS / "resnet50-v1.5.arch", "--check", "--device", device)
    assert code == 0, err
    assert out.splitlines()[0].startswith("resnet50-v1.5 on cuda:0") and out.rstrip().endswith("ok")


def test_batches_on_the_gpu_are_those_of_the_cpu(tmp_path):
    """The same crops and flips whichever device makes them: in-memory batches exactly,
    file batches (copied on a side stream, resampled by the GPU) to rounding."""
    from PIL import Image

    from resdsl.training.data import image_folder, synthetic
    from resdsl.training.feed import batches

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    split, _ = synthetic((3, 32, 32), 10, size=512)
    for (a, y), (b, z) in zip(batches(split, 64, 3, 1, 0, 1, 0, 0, cpu),
                              batches(split.to(gpu), 64, 3, 1, 0, 1, 0, 0, gpu)):
        assert b.device.type == "cuda" and torch.equal(a, b.cpu()) and torch.equal(y, z.cpu())
    for part in ("train", "val"):
        for i in range(8):
            (tmp_path / part / str(i % 2)).mkdir(parents=True, exist_ok=True)
            pixels = torch.randint(0, 256, (300 + 10 * i, 280, 3), dtype=torch.uint8).numpy()
            Image.fromarray(pixels).save(tmp_path / part / str(i % 2) / f"{i}.jpg")
    files, _ = image_folder(tmp_path, crop=224)
    for (a, y), (b, z) in zip(batches(files, 4, 0, 0, 0, 1, 0, 2, cpu),
                              batches(files.to(gpu), 4, 0, 0, 0, 1, 0, 2, gpu)):
        assert torch.allclose(a, b.cpu(), atol=1e-4) and torch.equal(y, z.cpu())
