"""The torch backend: every network builds, trains a step, and has exactly the params and
output shape that the static passes report; torchvision's weights load both ways."""

import math

import pytest

torch = pytest.importorskip("torch")
models = pytest.importorskip("torchvision.models")

import resdsl  # noqa: E402
from resdsl import ResdslError  # noqa: E402
from tests.conftest import ARCHS  # noqa: E402

ALL_ARCHS = sorted(p.name for p in ARCHS.glob("*.arch"))
TORCHVISION = [("resnet18.arch", "resnet18"), ("resnet34.arch", "resnet34"),
               ("resnet50-v1.5.arch", "resnet50"), ("resnet101-v1.5.arch", "resnet101"),
               ("resnet152-v1.5.arch", "resnet152")]


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_every_arch_trains_a_step_with_its_static_params_and_shape(arch):
    torch.manual_seed(0)
    summary = resdsl.count(ARCHS / arch)
    model = resdsl.load(ARCHS / arch)
    assert sum(p.numel() for p in model.parameters()) == summary.params
    x = torch.randn(1, *summary.input)
    out = model(x)
    assert tuple(out.shape) == (1, *summary.output)
    out.logsumexp(1).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert math.isfinite(out.sum().item())


@pytest.mark.parametrize("arch, builder", TORCHVISION)
def test_torchvision_weights_load_both_ways_with_equal_outputs(arch, builder):
    torch.manual_seed(0)
    assert_weights_load_both_ways(resdsl.load(ARCHS / arch, naming="torchvision"),
                                  getattr(models, builder)(), sizes=ODD_SIZES[arch])


# 64 and the odd 97 for each; 201 too for the smaller layouts (a cost of CPU time)
ODD_SIZES = {arch: (64, 97, 201) if arch in ("resnet18.arch", "resnet50-v1.5.arch") else (64, 97)
             for arch, _ in TORCHVISION}


def assert_weights_load_both_ways(ours, theirs, tolerance=1e-5, sizes=(64,)):
    """Their state dict loads strictly into ours; ours, its BNs perturbed, back into
    theirs; and both give the same outputs in train and eval mode, at each input size
    (an odd one shows a stride, padding or ceil-mode rounding that differs)."""
    ours.load_state_dict(theirs.state_dict(), strict=True)
    _perturb_batchnorm(ours)
    theirs.load_state_dict(ours.state_dict(), strict=True)  # and back
    for size in sizes:
        x = torch.randn(2, 3, size, size)
        for mode in ("train", "eval"):
            getattr(ours, mode)(), getattr(theirs, mode)()
            with torch.no_grad():
                torch.testing.assert_close(ours(x), theirs(x), rtol=tolerance, atol=tolerance,
                                           msg=lambda m: f"at {size}x{size}, {mode}: {m}")


def _perturb_batchnorm(model):
    """Give every BN non-trivial statistics and affine terms, so that a swapped or
    skipped BN would show in the outputs."""
    generator = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=generator) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=generator) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=generator) * 0.1)


def test_arch_names_follow_the_scopes_of_the_file():
    names = dict(resdsl.load(ARCHS / "resnet34.arch").named_modules())
    for name in ("conv1.conv", "conv1.bn", "conv2_x.maxpool", "conv2_x.0.conv1",
                 "conv3_x.0.conv1", "conv3_x.0.shortcut.conv", "conv3_x.0.shortcut.bn",
                 "conv5_x.2.bn2", "head.fc"):
        assert name in names, name
    assert "conv3_x.1.shortcut" in names and not list(names["conv3_x.1.shortcut"].parameters())
    assert names["conv3_x.0.conv1"].stride == (2, 2)


def test_stride_on_follows_the_file():
    v1 = dict(resdsl.load(ARCHS / "resnet50.arch").named_modules())
    v15 = dict(resdsl.load(ARCHS / "resnet50-v1.5.arch").named_modules())
    assert v1["conv3_x.0.conv1"].stride == (2, 2) and v1["conv3_x.0.conv2"].stride == (1, 1)
    assert v15["conv3_x.0.conv1"].stride == (1, 1) and v15["conv3_x.0.conv2"].stride == (2, 2)


def test_torchvision_names():
    names = dict(resdsl.load(ARCHS / "resnet50-v1.5.arch", naming="torchvision").named_modules())
    for name in ("conv1", "bn1", "maxpool", "layer1.0.conv3", "layer2.0.downsample.0",
                 "layer2.0.downsample.1", "layer4.2.bn3", "fc"):
        assert name in names, name


def test_option_a_has_no_shortcut_params_and_pads_with_zeros():
    model = resdsl.load(ARCHS / "cifar-resnet.arch").eval()
    unit = dict(model.named_modules())["conv3_x.0"]
    assert not list(unit.shortcut.parameters())
    x = torch.randn(2, 16, 32, 32)
    padded = unit.shortcut(x)
    assert padded.shape == (2, 32, 16, 16)
    assert torch.equal(padded[:, :16], x[:, :, ::2, ::2]) and not padded[:, 16:].any()


def test_plain_network_has_no_additions():
    fx = torch.fx.symbolic_trace(resdsl.load(ARCHS / "cifar-plain.arch"))
    targets = {str(n.target) for n in fx.graph.nodes}
    assert not any("add" in t for t in targets)


def test_initialisation_is_he_and_bn_identity():
    torch.manual_seed(0)
    model = resdsl.load(ARCHS / "resnet50-v1.5.arch")
    conv = dict(model.named_modules())["conv4_x.0.conv2"]  # 3x3, 256 -> 256
    fan_out = conv.out_channels * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.02)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in bns)
    assert all(not m.bias.any() for m in bns)


def test_zero_init_residual_zeroes_each_units_last_bn():
    model = resdsl.load(ARCHS / "resnet50-v1.5.arch", zero_init_residual=True)
    names = dict(model.named_modules())
    assert not names["conv2_x.0.bn3"].weight.any() and not names["conv5_x.2.bn3"].weight.any()
    assert names["conv2_x.0.bn2"].weight.all() and names["conv2_x.0.shortcut.bn"].weight.all()


def test_params_override_as_set_does():
    model = resdsl.load(ARCHS / "cifar-resnet.arch", n=18)
    assert sum(p.numel() for p in model.parameters()) == 1_727_962


def test_a_state_dict_that_does_not_fit_is_an_input_error():
    with pytest.raises(ResdslError, match="does not fit") as error:
        resdsl.load(ARCHS / "resnet18.arch", state_dict=models.resnet18().state_dict())
    assert "naming='torchvision'" in error.value.hint
    assert "Missing key(s) in state_dict: \"conv1.conv.weight\"" in error.value.message


def test_torchvision_naming_refuses_other_layouts():
    with pytest.raises(ResdslError, match="torchvision's ResNet"):
        resdsl.load(ARCHS / "vgg16.arch", naming="torchvision")


@pytest.mark.parametrize("arch, naming", [("cifar-resnet.arch", "arch"), ("resnet18.arch", "arch"),
                                          ("resnet50.arch", "torchvision"),
                                          ("vgg16.arch", "arch")])
def test_fold_bn_equals_the_unfolded_network_in_eval(arch, naming):
    torch.manual_seed(0)
    model = resdsl.load(ARCHS / arch, naming=naming)
    _perturb_batchnorm(model)
    model.eval()
    folded = resdsl.load(ARCHS / arch, naming=naming, fold_bn=True, state_dict=model.state_dict())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert not folded.training
    x = torch.randn(2, *resdsl.count(ARCHS / arch).input)
    with torch.no_grad():
        expected = model(x)
        # rtol 1e-4, and the absolute floor scaled to the logits: with perturbed BNs they
        # reach ~1e3, and fp32 itself (unfolded vs float64) differs by ~1e-6 of that.
        torch.testing.assert_close(folded(x), expected, rtol=1e-4,
                                   atol=1e-4 * expected.abs().max().item())
