"""A resdsl network as a detection backbone (sec. 4.3): torchvision's Faster R-CNN takes
a training step and an inference on synthetic images with boxes, once with the paper's
design (conv1 ... conv4_x shared, conv5_x as the per-region head, BN fixed) and once
with a feature pyramid over conv2_x ... conv5_x."""

from collections import OrderedDict

import pytest

torch = pytest.importorskip("torch")
detection = pytest.importorskip("torchvision.models.detection")

import resdsl  # noqa: E402
from tests.conftest import ARCHS  # noqa: E402

from torchvision.models.detection.faster_rcnn import FastRCNNPredictor  # noqa: E402
from torchvision.models.detection.rpn import AnchorGenerator  # noqa: E402
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign  # noqa: E402
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool  # noqa: E402

CLASSES = 3  # two object classes and the background
SMALL = {"min_size": 128, "max_size": 160}  # Faster R-CNN's own resizing, kept small


def _scenes(count: int = 2):
    """Images with a bright box of a known class on noise, and their targets."""
    generator = torch.Generator().manual_seed(0)
    images, targets = [], []
    for i in range(count):
        image = torch.rand(3, 128, 160, generator=generator) * 0.2
        top, left = 20 + 10 * i, 30 + 15 * i
        image[:, top:top + 48, left:left + 64] = 0.9
        images.append(image)
        targets.append({"boxes": torch.tensor([[left, top, left + 64, top + 48]],
                                              dtype=torch.float32),
                        "labels": torch.tensor([1 + i % 2])})
    return images, targets


def _train_step_and_infer(detector):
    images, targets = _scenes()
    optimizer = torch.optim.SGD([p for p in detector.parameters() if p.requires_grad], lr=0.01)
    detector.train()
    losses = detector(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness",
                           "loss_rpn_box_reg"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    optimizer.zero_grad()
    total.backward()
    optimizer.step()
    detector.eval()
    with torch.no_grad():
        found = detector(images)
    assert len(found) == 2
    for result in found:
        assert result["boxes"].shape[1:] == (4,) and len(result["labels"]) == len(result["boxes"])


def test_stages_return_the_named_outputs():
    model = resdsl.load(ARCHS / "resnet18.arch")
    features = resdsl.stages(model, ["conv2_x", "conv3_x", "conv4_x", "conv5_x"])
    outputs = features(torch.randn(1, 3, 224, 224))
    assert list(outputs) == ["conv2_x", "conv3_x", "conv4_x", "conv5_x"]
    assert [tuple(x.shape[1:]) for x in outputs.values()] == [
        (64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7)]
    assert features.channels == [64, 128, 256, 512] and features.out_channels == 512
    assert features.conv2_x is model.conv2_x  # shared, not copied
    trunk = resdsl.stages(resdsl.load(ARCHS / "resnet50.arch"), ["conv4_x"])
    assert trunk.out_channels == 1024 and not hasattr(trunk, "conv5_x")
    named = resdsl.stages(resdsl.load(ARCHS / "resnet50.arch", naming="torchvision"),
                          ["layer1", "layer4"])
    assert named.channels == [256, 2048]
    with pytest.raises(ValueError, match="stages are conv1, conv2_x"):
        resdsl.stages(model, ["res4"])
    with pytest.raises(ValueError, match="forward order"):
        resdsl.stages(model, ["conv4_x", "conv2_x"])


def test_faster_rcnn_with_the_papers_design():
    """conv1 ... conv4_x on the whole image; RoI pooling to 14x14; conv5_x (its first
    unit strides to 7x7) and the global pool per region; BN folded into fixed affine
    terms, as the paper does for detection."""
    model = resdsl.load(ARCHS / "resnet18.arch", fold_bn=True)
    trunk = resdsl.stages(model, ["conv4_x"])
    head = torch.nn.Sequential(model.conv5_x, torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten())
    detector = detection.FasterRCNN(
        trunk, num_classes=None,
        rpn_anchor_generator=AnchorGenerator(((32, 64, 128),), ((0.5, 1.0, 2.0),)),
        box_roi_pool=MultiScaleRoIAlign(["conv4_x"], output_size=14, sampling_ratio=2),
        box_head=head, box_predictor=FastRCNNPredictor(512, CLASSES), **SMALL)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in detector.modules())
    _train_step_and_infer(detector)


class _WithFPN(torch.nn.Module):
    def __init__(self, stages):
        super().__init__()
        self.body = stages
        self.fpn = FeaturePyramidNetwork(stages.channels, 256, extra_blocks=LastLevelMaxPool())
        self.out_channels = 256

    def forward(self, x) -> OrderedDict:
        return self.fpn(self.body(x))


def test_faster_rcnn_with_a_feature_pyramid():
    names = ["conv2_x", "conv3_x", "conv4_x", "conv5_x"]
    backbone = _WithFPN(resdsl.stages(resdsl.load(ARCHS / "resnet18.arch"), names))
    detector = detection.FasterRCNN(
        backbone, num_classes=CLASSES,
        box_roi_pool=MultiScaleRoIAlign(names, output_size=7, sampling_ratio=2), **SMALL)
    _train_step_and_infer(detector)


# --- feature_info, as timm's models carry it ----------------------------------------------

def _timm_feature_info(name: str) -> list[dict]:
    timm = pytest.importorskip("timm")
    return [{k: f[k] for k in ("num_chs", "reduction", "module")}
            for f in timm.create_model(name, pretrained=False).feature_info]


def test_feature_info_of_resnet50_is_timms_under_either_naming():
    """timm lists the stem (`act1`, reduction 2) and layer1 ... layer4. resdsl's stem is
    its first stage, conv1 (conv, BN, ReLU; the max pool opens conv2_x, as in Table 1),
    so the entries line up one for one: under torchvision's names the stem's module is
    `relu`, torchvision's name for timm's `act1`; under the .arch names each is its stage."""
    expected = _timm_feature_info("resnet50")
    torchvision_names = resdsl.load(ARCHS / "resnet50.arch", naming="torchvision").feature_info
    assert torchvision_names[1:] == expected[1:]
    assert torchvision_names[0] == {**expected[0], "module": "relu"}
    arch_names = resdsl.load(ARCHS / "resnet50.arch").feature_info
    assert [(f["num_chs"], f["reduction"]) for f in arch_names] == [
        (f["num_chs"], f["reduction"]) for f in expected]
    assert [f["module"] for f in arch_names] == ["conv1", "conv2_x", "conv3_x", "conv4_x",
                                                 "conv5_x"]
    # ResNet-D's deep stem under timm's names is timm's resnet50d, act1 included
    assert resdsl.load(ARCHS / "resnet50-d.arch", naming="timm").feature_info == \
        _timm_feature_info("resnet50d")


def test_feature_info_of_cifar_resnet_and_odd_sizes():
    info = resdsl.load(ARCHS / "cifar-resnet.arch").feature_info
    assert [(f["module"], f["num_chs"], f["reduction"]) for f in info] == [
        ("conv1", 16, 1), ("conv2_x", 16, 1), ("conv3_x", 32, 2), ("conv4_x", 64, 4)]
    odd = resdsl.load(ARCHS / "resnet50.arch", input="3x225x225").feature_info  # 225 -> 113 ...
    assert [f["reduction"] for f in odd] == [2, 4, 8, 16, 32]


@pytest.mark.parametrize("arch, naming", [("resnet50", "arch"), ("resnet50", "torchvision"),
                                          ("resnet50-v2", "timm"), ("resnet50-d", "timm"),
                                          ("cifar-resnet", "arch"), ("vgg19", "arch")])
def test_each_feature_info_module_returns_that_map(arch, naming):
    size = 32 if arch == "cifar-resnet" else 64
    model = resdsl.load(ARCHS / f"{arch}.arch", naming=naming,
                        input=f"3x{size}x{size}").eval()  # VGG's fc takes the size's map
    seen = {}
    for f in model.feature_info:
        model.get_submodule(f["module"]).register_forward_hook(
            lambda module, args, out, name=f["module"]: seen.__setitem__(name, out.shape))
    with torch.no_grad():
        model(torch.randn(1, 3, size, size))
    assert [seen[f["module"]][1:] for f in model.feature_info] == [
        (f["num_chs"], size // f["reduction"], size // f["reduction"])
        for f in model.feature_info]


def test_the_compiled_file_carries_the_same_feature_info(tmp_path, cli):
    import importlib.util

    code, _, _ = cli("compile", "resnet50", "--naming", "torchvision", "-o", tmp_path / "m.py")
    spec = importlib.util.spec_from_file_location("compiled_resnet50", tmp_path / "m.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loaded = resdsl.load("resnet50", naming="torchvision")
    assert code == 0 and module.Resnet50().feature_info == loaded.feature_info
    assert loaded.feature_info is not type(loaded)().feature_info  # each model its own list


def test_stages_take_channels_from_feature_info_and_still_read_plain_modules():
    torchvision = pytest.importorskip("torchvision")
    model = resdsl.load(ARCHS / "resnet50.arch", naming="torchvision")
    stem = resdsl.stages(model, ["relu", "layer2"])  # a stage without a conv of its own
    assert stem.channels == [64, 512] and stem.feature_info == [
        model.feature_info[0], model.feature_info[2]]
    model.feature_info[2] = {**model.feature_info[2], "num_chs": 7}  # read, not recounted
    assert resdsl.stages(model, ["layer2"]).channels == [7]
    plain = torchvision.models.resnet18()  # no feature_info: the last conv's width
    assert resdsl.stages(plain, ["layer1", "layer4"]).channels == [64, 512]


def test_a_stage_named_feature_info_is_refused_at_its_line(write_arch, cli):
    path = write_arch("network n\ninput 3x8x8\nshortcut none\nfeature_info 8x8 : 3x3, 4\n"
                      "head 1x1 : avgpool, fc 2\n")
    code, out, err = cli("compile", path)
    assert code == 1 and out == ""
    assert f"{path}:4:1: error[E703]: the stage name 'feature_info'" in err
    assert cli("compile", path, "--naming", "torchvision")[0] == 1  # no torchvision layout
    assert cli("flops", path)[0] == 1  # the front end refuses it, in every command
