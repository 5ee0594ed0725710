"""The paper's experiments on real formats: the Fashion-MNIST source, `resdsl eval`
(centre, 10-crop and multi-scale testing, ensembles, torchvision weights) and
`resdsl responses` (Figure 7), on small data the tests write."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import resdsl  # noqa: E402
from resdsl.errors import ResdslError  # noqa: E402
from resdsl.evaluation import responses  # noqa: E402
from resdsl.evaluation.views import Batch, batches, views  # noqa: E402
from resdsl.training.augment import crop_resize_flip  # noqa: E402
from resdsl.training.data import FASHION_MNIST_DEBIAN, fashion_mnist, image_folder  # noqa: E402
from tests.conftest import ARCHS, STUCK_AFTER_S  # noqa: E402
from tests.test_train import _write_cifar  # noqa: E402

CPU = torch.device("cpu")
TINY = ["--set", "n=1"]


def _write_fashion(folder: Path, train: int = 48, test: int = 16) -> np.ndarray:
    """The four idx files, gzipped as Debian ships them; returns the test images."""
    folder.mkdir()
    rng = np.random.default_rng(1)
    for prefix, count in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        header = np.array([0x803, count, 28, 28], ">u4").tobytes()
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(header + images.tobytes()))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(np.array([0x801, count], ">u4").tobytes() + labels.tobytes()))
    return images


def test_fashion_mnist_is_centred_on_a_black_canvas_of_the_networks_input(tmp_path):
    test_images = _write_fashion(tmp_path / "fm")
    train, test = fashion_mnist(tmp_path / "fm", (3, 32, 32))
    assert train.images.shape == (48, 3, 32, 32) and test.images.shape == (16, 3, 32, 32)
    first = torch.from_numpy(test_images[0])
    for channel in range(3):
        assert torch.equal(test.images[0, channel, 2:30, 2:30], first)
    assert test.images[:, :, :2].sum() == 0 and test.images[:, :, :, 30:].sum() == 0
    assert torch.equal(test.mean, train.images.float().mean(0) / 255)
    one_channel, _ = fashion_mnist(tmp_path / "fm", (1, 28, 28))
    assert one_channel.images.shape == (48, 1, 28, 28)


def test_fashion_mnist_errors_name_the_file(tmp_path, cli):
    _write_fashion(tmp_path / "fm")
    with pytest.raises(ResdslError, match="Fashion-MNIST's 28x28 images do not fit"):
        fashion_mnist(tmp_path / "fm", (3, 24, 24))
    (tmp_path / "fm" / "t10k-labels-idx1-ubyte.gz").unlink()
    code, _, err = cli("train", ARCHS / "cifar-resnet.arch", *TINY, "--data",
                       f"fashion-mnist:{tmp_path / 'fm'}", "--out", tmp_path / "run")
    assert code == 1 and "t10k-labels-idx1-ubyte.gz" in err and "dataset-fashion-mnist" in err
    (tmp_path / "fm" / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x03" + bytes(8))
    with pytest.raises(ResdslError, match="not an idx file of 1 dimension"):
        fashion_mnist(tmp_path / "fm", (3, 32, 32))
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not Path(FASHION_MNIST_DEBIAN).is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_the_default_is_debians_fashion_mnist():
    train, test = fashion_mnist(FASHION_MNIST_DEBIAN, (3, 32, 32))
    assert (len(train), len(test)) == (60_000, 10_000)
    assert train.labels.bincount().tolist() == [6000] * 10


def _runs(tmp_path, cli, count: int = 1, steps: int = 6) -> list[Path]:
    """Tiny ResNets trained on Fashion-MNIST-format files, one per seed."""
    if not (tmp_path / "fm").exists():
        _write_fashion(tmp_path / "fm")
    runs = []
    for seed in range(count):
        run = tmp_path / f"run{seed}"
        code, _, err = cli("train", ARCHS / "cifar-resnet.arch", *TINY, "--data",
                           f"fashion-mnist:{tmp_path / 'fm'}", "--steps", steps,
                           "--batch", 8, "--log-every", 2, "--seed", seed, "--out", run,
                           "--no-progress")
        assert code == 0, err
        runs.append(run)
    return runs


def _final_test_error(run: Path) -> float:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["split"] == "test"][-1]["error"]


def _eval_rows(out: str) -> dict[tuple[str, str], tuple[float, float]]:
    rows = {}
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 5 and cells[3].replace(".", "").isdigit():
            rows[cells[0].split()[0], cells[2]] = (float(cells[3]), float(cells[4]))
    return rows


def test_center_testing_is_what_training_reported(tmp_path, cli):
    (run,) = _runs(tmp_path, cli)
    code, out, err = cli("eval", run, "--data", f"fashion-mnist:{tmp_path / 'fm'}",
                         "--test", "center,10-crop,multi-scale", "--no-progress")
    assert code == 0, err
    rows = _eval_rows(out)
    top1, top5 = rows["center", f"{run} (step 6)"]
    assert top1 == pytest.approx(100 * _final_test_error(run), abs=0.005)
    assert top5 <= top1
    assert {test for test, _ in rows} == {"center", "10-crop", "multi-scale"}
    assert "16 test images" in out and "multi-scale 32,37,55,69,91 | 5 |" in out


def test_an_ensemble_averages_its_members_softmax_scores(tmp_path, cli):
    runs = _runs(tmp_path, cli, count=2)
    code, out, err = cli("eval", *runs, "--data", f"fashion-mnist:{tmp_path / 'fm'}",
                         "--no-progress")
    assert code == 0, err
    train, test = fashion_mnist(tmp_path / "fm", (3, 32, 32))
    scores = []
    for run in runs:
        state = torch.load(sorted(run.glob("checkpoint-*.pt"))[-1], weights_only=True)
        model = resdsl.load(ARCHS / "cifar-resnet.arch", n=1, state_dict=state["model"]).eval()
        with torch.no_grad():
            scores.append(model(test.images.float() / 255 - train.mean).softmax(1))
    wrong = (torch.stack(scores).mean(0).argmax(1) != test.labels).float().mean().item()
    assert _eval_rows(out)["center", "ensemble"][0] == pytest.approx(100 * wrong, abs=0.005)
    for run, score in zip(runs, scores):  # each member's own row too
        own = (score.argmax(1) != test.labels).float().mean().item()
        assert _eval_rows(out)["center", f"{run} (step 6)"][0] == pytest.approx(100 * own,
                                                                                 abs=0.005)


def test_views_of_in_memory_images():
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    batch = Batch(torch.zeros(3, dtype=torch.long), images=images)
    x = images.float() / 255
    (_, center), = views("center", batch, 32, ())
    assert torch.equal(center, x)
    crops = [crop for _, crop in views("10-crop", batch, 32, ())]
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    assert len(crops) == 10
    assert torch.equal(crops[0], padded[..., :32, :32])  # top left
    assert torch.equal(crops[3], padded[..., 8:, 8:])  # bottom right
    assert torch.equal(crops[4], x) and torch.equal(crops[9], x.flip(-1))  # centre, mirrored
    scaled = [crop for _, crop in views("multi-scale", batch, 32, (32, 48))]
    assert torch.allclose(scaled[0], x, atol=1e-6) and scaled[1].shape == (3, 3, 48, 48)


def _write_images(folder: Path, sizes: list[tuple[int, int]], classes: int = 2,
                  smooth: bool = False) -> None:
    """PNGs of random pixels, or of ramps down and across (which resample predictably)."""
    from PIL import Image

    rng = np.random.default_rng(2)
    for part in ("train", "val"):
        for cls in range(classes):
            (folder / part / str(cls)).mkdir(parents=True)
            for i, (height, width) in enumerate(sizes):
                pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                if smooth:
                    down, across = np.mgrid[:height, :width]
                    pixels = np.stack([255 * down / height, 255 * across / width,
                                       np.full(down.shape, 99)], -1).astype(np.uint8)
                Image.fromarray(pixels).save(folder / part / str(cls) / f"{i}.png")


def test_views_of_image_files(tmp_path):
    _write_images(tmp_path / "img", [(300, 400), (500, 260)], smooth=True)
    _, val = image_folder(tmp_path / "img", crop=224)
    (batch,) = batches(val, 4, ("center", "10-crop", "multi-scale"), (224, 320), workers=0)
    (_, center), = views("center", batch, 224, ())
    crops = [crop for _, crop in views("10-crop", batch, 224, ())]
    assert torch.equal(crops[4], center)  # the middle crop is the centre view
    assert torch.allclose(crops[9], center.flip(-1), atol=1e-5)
    at_256 = torch.nn.functional.interpolate(  # the first image, resized to 256 x 341
        batch.canvas[:1, :, :300, :400].float() / 255, size=(256, 341), mode="bilinear")[0]
    assert torch.allclose(crops[0][0], at_256[:, :224, :224], atol=0.01)  # top left
    assert torch.allclose(crops[3][0], at_256[:, -224:, -224:], atol=0.01)  # bottom right
    assert torch.allclose(crops[7][0], at_256[:, -224:, :224].flip(-1), atol=0.01)
    shapes = [(which, x.shape) for which, x in views("multi-scale", batch, 224, (224, 320))]
    assert shapes[:2] == [(slice(0, 1), (1, 3, 224, 299)), (slice(0, 1), (1, 3, 320, 427))]
    assert shapes[2] == (slice(1, 2), (1, 3, 431, 224))


def test_torchvision_weights_with_its_normalisation(tmp_path, cli):
    torchvision = pytest.importorskip("torchvision")
    _write_images(tmp_path / "img", [(240, 300), (300, 240)], classes=3)
    reference = torchvision.models.resnet18(num_classes=3)
    for module in reference.modules():  # statistics that show a wrong wiring
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2)
    torch.save(reference.state_dict(), tmp_path / "r18.pth")
    (tmp_path / "img" / "train").rename(tmp_path / "unused")  # val/ is all it needs
    code, out, err = cli("eval", ARCHS / "resnet18.arch", "--set", "classes=3", "--weights",
                         tmp_path / "r18.pth", "--naming", "torchvision", "--data",
                         f"imagefolder:{tmp_path / 'img'}", "--test",
                         "center,10-crop,multi-scale", "--scales", "224,256", "--no-progress")
    assert code == 0, err
    _, val = image_folder(tmp_path / "img", crop=224, with_train=False)
    (batch,) = batches(val, 8, ("center",), (), workers=0)
    x = crop_resize_flip(batch.canvas, batch.boxes, 224)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    with torch.no_grad():
        scores = reference.eval()((x - mean[:, None, None]) / std[:, None, None])
    wrong = (scores.argmax(1) != val.labels).float().mean().item()
    assert _eval_rows(out)["center", str(tmp_path / "r18.pth")][0] == pytest.approx(
        100 * wrong, abs=0.005)


def test_eval_errors(tmp_path, cli):
    (run,) = _runs(tmp_path, cli, steps=2)
    data = ["--data", f"fashion-mnist:{tmp_path / 'fm'}", "--no-progress"]
    code, _, err = cli("eval", ARCHS / "cifar-resnet.arch", *data)
    assert code == 1 and "is a network, not trained weights" in err and "--weights" in err
    code, _, err = cli("eval", tmp_path / "nothing", *data)
    assert code == 1 and "no run folder or checkpoint file" in err
    (tmp_path / "empty").mkdir()
    code, _, err = cli("eval", tmp_path / "empty", *data)
    assert code == 1 and "holds no checkpoint" in err and "E705" in err
    saved = sorted(run.glob("checkpoint-*.pt"))[-1]
    code, _, err = cli("eval", ARCHS / "cifar-resnet.arch", "--weights", saved, *data)
    assert code == 1 and "does not fit" in err  # n=3 by default; the run used n=1
    code, out, err = cli("eval", ARCHS / "cifar-resnet.arch", *TINY, "--weights", saved, *data)
    assert code == 0 and "16 test images" in out  # a checkpoint's weights, as a state dict
    code, _, err = cli("eval", run, ARCHS / "resnet18.arch", *data)
    assert code == 1 and "E705" in err
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    code, _, err = cli("eval", ARCHS / "cifar-resnet.arch", "--weights", tmp_path / "junk.pth",
                       *data)
    assert code == 1 and "junk.pth" in err and "not a file that torch.save wrote" in err
    code, _, err = cli("eval", run, "--test", "5-crop", *data)
    assert code == 2 and "center, 10-crop, multi-scale" in err


def test_each_3x3_layer_after_its_bn():
    model = resdsl.load(ARCHS / "cifar-resnet.arch", n=3)
    assert len(responses.three_by_three(model)) == 19  # the first conv and 18 in units
    bottlenecks = resdsl.load(ARCHS / "resnet50.arch")
    assert len(responses.three_by_three(bottlenecks)) == 16  # one per unit; conv1 is 7x7


def test_responses_are_the_std_of_every_value_of_a_layer(tmp_path, cli):
    from resdsl.evaluation.members import from_run

    (run,) = _runs(tmp_path, cli, steps=2)
    member = from_run(run, CPU)
    layers = responses.three_by_three(member.model)
    shifts = []
    for layer in layers:  # each output channel a constant: its std is theirs
        layer.weight.data.zero_()
        layer.bias.data.normal_()
        shifts.append(layer.bias.data.std(unbiased=False).item())
    _, test = fashion_mnist(tmp_path / "fm", (3, 32, 32))
    measured = responses.measure(member, test, 5, CPU, 0, progress=False)
    assert measured == pytest.approx(shifts, rel=1e-6)


def test_responses_draws_figure_7(tmp_path, cli):
    pytest.importorskip("matplotlib")
    runs = _runs(tmp_path, cli, count=2, steps=2)
    code, out, err = cli("responses", *runs, "--data", f"fashion-mnist:{tmp_path / 'fm'}",
                         "-o", tmp_path / "fig7.png", "--no-progress")
    assert code == 0, err
    assert (tmp_path / "fig7.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| run0 | 7 |" in out and "| run1 | 7 |" in out
    code, _, err = cli("responses", *runs, "--data", "synthetic", "-o", tmp_path / "f.gif")
    assert code == 1 and "cannot tell the format" in err


def test_the_degradation_example_draws_figure_6_and_its_table(tmp_path):
    """examples/degradation.py end to end, at the smallest depth (6n+2 = 8) and a few
    steps: every network trains, the figure is a PNG and the table has a row each."""
    import subprocess
    import sys

    pytest.importorskip("matplotlib")
    _write_fashion(tmp_path / "fm")
    script = Path(__file__).resolve().parent.parent / "examples" / "degradation.py"
    proc = subprocess.run([sys.executable, script, "--data", f"fashion-mnist:{tmp_path / 'fm'}",
                           "--depths", "8", "--steps", "4", "--batch", "8", "--log-every", "2",
                           "--eval-every", "2", "--out", tmp_path / "fig6"],
                          capture_output=True, text=True, timeout=STUCK_AFTER_S)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "fig6" / "degradation.png").read_bytes()[:4] == b"\x89PNG"
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| plain-8")
            or line.startswith("| ResNet-8")]
    assert len(rows) == 2 and all(line.count("%") == 3 for line in rows)
    again = subprocess.run(proc.args, capture_output=True, text=True, timeout=STUCK_AFTER_S)
    assert again.returncode == 0 and again.stdout.count("nothing to train") == 2


def test_a_run_trained_from_a_relative_path_evaluates_from_anywhere(tmp_path, cli,
                                                                    monkeypatch):
    _write_fashion(tmp_path / "fm")
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "net.arch").write_text((ARCHS / "cifar-resnet.arch").read_text())
    monkeypatch.chdir(tmp_path / "project")
    code, _, err = cli("train", "net.arch", *TINY, "--data", f"fashion-mnist:{tmp_path / 'fm'}",
                       "--steps", 2, "--batch", 8, "--log-every", 2, "--out", "run",
                       "--no-progress")
    assert code == 0, err
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("eval", "project/run", "--data", f"fashion-mnist:{tmp_path / 'fm'}",
                         "--no-progress")
    assert code == 0, err


def test_evaluations_that_cannot_work_are_e713(tmp_path, cli):
    (run,) = _runs(tmp_path, cli, steps=2)
    data = ["--data", f"fashion-mnist:{tmp_path / 'fm'}", "--no-progress"]
    weights = tmp_path / "five.pth"
    torch.save(resdsl.load(ARCHS / "cifar-resnet.arch", n=1, classes=5).state_dict(), weights)
    cases = [
        (["eval", run, "--normalize", "imagenet"], "apply to an .arch file with --weights"),
        (["eval", run, *TINY], "apply to an .arch file with --weights"),
        (["eval", run, "--weights", weights], "--weights goes with one .arch file"),
        (["eval", run, "--scales", "32"], "--scales is for --test multi-scale"),
        (["eval", run, "--test", "multi-scale", "--scales", "32,100000"],
         "more than 4 times the paper's largest"),
        (["eval", ARCHS / "cifar-resnet.arch", *TINY, "--set", "classes=5", "--weights",
          weights], "scores 5 classes"),
        (["responses", run, run, "-o", tmp_path / "r.png"], "more than one run is labelled"),
    ]
    for args, message in cases:
        code, _, err = cli(*args, *data)
        assert code == 1 and "E713" in err and message in err, (args, err)
    other = tmp_path / "other"  # a member that takes another network's output
    code, _, err = cli("train", ARCHS / "cifar-resnet.arch", *TINY, "--set", "classes=12",
                       "--data", "synthetic", "--steps", 1, "--batch", 8, "--log-every", 1,
                       "--out", other, "--no-progress")
    assert code == 0, err
    code, _, err = cli("eval", run, other, *data)
    assert code == 1 and "an ensemble's members must agree" in err
    code, _, err = cli("eval", weights, *data)
    assert code == 1 and "is not a checkpoint that `resdsl train` wrote" in err
    code, _, err = cli("responses", run, "-o", tmp_path / "no" / "r.png", *data)
    assert code == 1 and "its folder does not exist" in err


def test_a_network_that_scores_more_classes_than_its_data_is_warned(tmp_path, cli):
    """A 200-class network trains on 10-class data; it says so, and refuses the reverse."""
    _write_fashion(tmp_path / "fm")
    data = f"fashion-mnist:{tmp_path / 'fm'}"
    common = [*TINY, "--data", data, "--steps", 1, "--batch", 8, "--log-every", 1,
              "--no-progress"]
    code, _, err = cli("train", ARCHS / "cifar-resnet.arch", "--set", "classes=200", *common,
                       "--out", tmp_path / "wide")
    assert code == 0 and err == (
        f"resdsl: warning[W107]: cifar-resnet[classes=200,n=1] scores 200 classes, but {data} "
        "has 10: 190 of its outputs are never a label\n"
        "hint: --set classes=10 matches the data\n")
    code, _, err = cli("train", ARCHS / "cifar-resnet.arch", "--set", "classes=5", *common,
                       "--out", tmp_path / "narrow")
    assert code == 1 and err == (
        f"resdsl: error[E706]: {data} has 10 classes, but cifar-resnet[classes=5,n=1] scores "
        "5 classes\n"
        "hint: write `classes 10` in the file, or --set classes=10\n")
    code, _, err = cli("eval", tmp_path / "wide", "--data", data, "--no-progress")
    assert code == 0 and "warning[W107]" in err


def test_test_images_caps_every_evaluation_of_a_training_run(tmp_path, cli):
    _write_fashion(tmp_path / "fm", test=16)
    code, out, err = cli("train", ARCHS / "cifar-resnet.arch", *TINY, "--data",
                         f"fashion-mnist:{tmp_path / 'fm'}", "--steps", 2, "--batch", 8,
                         "--log-every", 1, "--eval-every", 1, "--test-images", 5,
                         "--out", tmp_path / "run", "--no-progress")
    assert code == 0, err
    assert "(5 images) after 2 steps" in out
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text()
               .splitlines()]
    tests = [record for record in records if record["split"] == "test"]
    assert len(tests) == 2 and all(record["images"] == 5 for record in tests)  # 1, the end


def test_evaluation_progress_into_a_file_is_plain_lines(tmp_path, cli):
    """Redirected, stderr gets a line per tenth of the images, as train's a line per
    sync, and no bar redrawn with carriage returns."""
    (run,) = _runs(tmp_path, cli, steps=2)
    code, _, err = cli("eval", run, "--data", f"fashion-mnist:{tmp_path / 'fm'}",
                       "--batch", 4)
    assert code == 0 and "\r" not in err
    assert err.splitlines() == [f"evaluating: {n}/16 images" for n in (4, 8, 12, 16)]
