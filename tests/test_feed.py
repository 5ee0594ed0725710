"""The input pipeline: batches made on the device from in-memory splits, image files
decoded by the real code (written to disk here), the batched crop-resize-flip against
Pillow's resize and crop, and the same batches whatever resumes or decodes them."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from resdsl.training.augment import EVAL_SIDE, crop_resize_flip, decode  # noqa: E402
from resdsl.training.data import image_folder, synthetic  # noqa: E402
from resdsl.training.feed import EpochBatches, batches  # noqa: E402

CPU = torch.device("cpu")


def _ramp(width: int, height: int) -> np.ndarray:
    """A smooth image (linear ramps per channel): resampling it is well defined, so two
    correct resizers agree on it to within rounding."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    return np.stack([40 + 170 * x / width, 30 + 190 * y / height,
                     200 - 150 * (x + y) / (width + height)], -1).round().astype(np.uint8)


def _pillow_reference(path, box_step, side, crop, flip):
    """What the paper's recipe means, done with Pillow: resize the shorter side to `side`,
    crop at (top, left) in the resized image, mirror."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        w, h = image.size
        factor = side / min(w, h)
        resized = image.resize((round(w * factor), round(h * factor)), Image.BILINEAR)
        top, left = box_step
        array = np.asarray(resized.crop((left, top, left + crop, top + crop)), np.float32)
    x = torch.from_numpy(array.copy()).permute(2, 0, 1) / 255
    return x.flip(-1) if flip else x


@pytest.mark.parametrize("size,suffix", [((300, 200), ".png"), ((1600, 1200), ".jpg")],
                         ids=["png", "large-jpeg"])
def test_crop_resize_flip_matches_pillow(tmp_path, size, suffix):
    path = tmp_path / f"ramp{suffix}"
    Image.fromarray(_ramp(*size)).save(path, quality=95)
    crop = 224
    # evaluation: the centre of the image resized to 256
    image, box = decode(path, crop, (256, 480), False, torch.Generator())
    out = crop_resize_flip(image[None], torch.tensor([box]), crop)[0]
    w, h = size
    resized = (round(w * EVAL_SIDE / min(w, h)), round(h * EVAL_SIDE / min(w, h)))
    reference = _pillow_reference(path, ((resized[1] - crop) // 2, (resized[0] - crop) // 2),
                                  EVAL_SIDE, crop, False)
    assert (out - reference).abs().mean() < 0.01 and (out - reference).abs().max() < 0.05
    # training: a random side, box and flip, drawn from the batch's generator
    for seed in range(3):
        generator = torch.Generator().manual_seed(seed)
        image, box = decode(path, crop, (256, 480), True, generator)
        replay = torch.Generator().manual_seed(seed)
        side = int(torch.randint(256, 481, (1,), generator=replay))
        factor = side / min(w, h)
        top = int(torch.randint(0, round(h * factor) - crop + 1, (1,), generator=replay))
        left = int(torch.randint(0, round(w * factor) - crop + 1, (1,), generator=replay))
        flip = torch.rand(1, generator=replay).item() < 0.5
        out = crop_resize_flip(image[None], torch.tensor([box]), crop)[0]
        reference = _pillow_reference(path, (top, left), side, crop, flip)
        assert (out - reference).abs().mean() < 0.003, (seed, side, flip)
    if suffix == ".jpg":  # decoded at a reduced scale, still covering the crop
        assert side <= image.shape[1] < h


def test_a_batch_of_different_sizes_is_cropped_in_one_call(tmp_path):
    for i, size in enumerate([(300, 200), (200, 300), (260, 260)]):
        (tmp_path / "train" / "a").mkdir(parents=True, exist_ok=True)
        (tmp_path / "val" / "a").mkdir(parents=True, exist_ok=True)
        Image.fromarray(_ramp(*size)).save(tmp_path / "train" / "a" / f"{i}.png")
        Image.fromarray(_ramp(*size)).save(tmp_path / "val" / "a" / f"{i}.png")
    train, val = image_folder(tmp_path, crop=64)
    x, y = next(batches(val, 3, 0, 0, 0, 1, 0, 0, CPU))
    assert x.shape == (3, 3, 64, 64) and y.tolist() == [0, 0, 0]
    for i in range(3):  # no image blends in the zeros that pad the smaller ones
        alone, _ = decode(val.images[i], 64, val.scale, False, torch.Generator())
        box = decode(val.images[i], 64, val.scale, False, torch.Generator())[1]
        single = crop_resize_flip(alone[None], torch.tensor([box]), 64)[0] - val.mean
        assert torch.allclose(x[i], single, atol=1e-5)


def test_in_memory_batches_resume_mid_epoch_exactly():
    split, _ = synthetic((3, 32, 32), 10, size=256)
    whole = list(batches(split, 16, 7, 3, 0, 1, 0, 0, CPU))
    tail = list(batches(split, 16, 7, 3, 0, 1, 5, 0, CPU))
    assert len(whole) == 14 and len(tail) == 9
    for (a, y), (b, z) in zip(whole[5:], tail):
        assert torch.equal(a, b) and torch.equal(y, z)
    padded = torch.nn.functional.pad(split.images.float() / 255, (4, 4, 4, 4))
    order = EpochBatches(split, 16, 7, 3, 0, 1).batches[0]
    for x, i in zip(whole[0][0] + split.mean, order):  # a window of the padded image
        windows = [padded[i, :, dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)]
        assert any(torch.allclose(x, w) or torch.allclose(x, w.flip(-1)) for w in windows)


def test_an_image_folder_subtracts_the_per_pixel_mean_of_its_training_images(tmp_path):
    sizes = [(300, 200), (200, 300), (260, 260)]
    for i, size in enumerate(sizes):
        for part in ("train", "val"):
            (tmp_path / part / "a").mkdir(parents=True, exist_ok=True)
            Image.fromarray(_ramp(*size)).save(tmp_path / part / "a" / f"{i}.png")
    train, val = image_folder(tmp_path, crop=224)
    assert train.mean.shape == (3, 224, 224) and val.mean is train.mean
    crops = []
    for w, h in sizes:  # Pillow's centre crop of each image resized to 256
        resized = (round(w * EVAL_SIDE / min(w, h)), round(h * EVAL_SIDE / min(w, h)))
        crops.append(_pillow_reference(tmp_path / "train" / "a" / f"{sizes.index((w, h))}.png",
                                       ((resized[1] - 224) // 2, (resized[0] - 224) // 2),
                                       EVAL_SIDE, 224, False))
    assert (train.mean - torch.stack(crops).mean(0)).abs().mean() < 0.003


@pytest.mark.parametrize("workers", [0, 2])
def test_an_unreadable_image_is_a_located_error(cli, tmp_path, workers):
    from tests.conftest import ARCHS

    for part in ("train", "val"):
        for i in range(4):
            (tmp_path / part / str(i % 2)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(_ramp(40, 36)).save(tmp_path / part / str(i % 2) / f"{i}.jpg")
    good = (tmp_path / "val" / "1" / "3.jpg").read_bytes()
    (tmp_path / "val" / "1" / "3.jpg").write_bytes(good[:len(good) // 3])  # truncated
    command = ["train", ARCHS / "cifar-resnet.arch", "--set", "n=1", "--data",
               f"imagefolder:{tmp_path}", "--steps", "2", "--batch", "4", "--log-every", "1",
               "--workers", str(workers), "--no-progress"]
    code, _, err = cli(*command, "--out", tmp_path / "run1")
    bad = tmp_path / "val" / "1" / "3.jpg"
    assert code == 1 and f"{bad}: error[E706]: cannot read this image" in err, err
    (tmp_path / "train" / "0" / "0.jpg").write_text("not an image")  # read for the mean
    code, _, err = cli(*command, "--out", tmp_path / "run2")
    assert code == 1 and "0.jpg: error[E706]: cannot read this image" in err, err
    assert "Traceback" not in err and "internal error" not in err


def test_an_image_whose_resized_side_rounds_below_the_crop_still_crops(tmp_path):
    path = tmp_path / "49.png"
    Image.fromarray(_ramp(49, 49)).save(path)
    for seed in range(60):  # sides 32-60 on a 49-pixel image: 49 * 32 / 49 may round down
        image, box = decode(path, 32, (32, 60), True, torch.Generator().manual_seed(seed))
        assert crop_resize_flip(image[None], torch.tensor([box]), 32).shape == (1, 3, 32, 32)
