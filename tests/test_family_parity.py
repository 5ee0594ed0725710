"""The ResNet family against the libraries people take it from: for each file in archs/,
torchvision's or timm's model of the same network, measured by torch itself
(parameters: sum of numel; multiply-adds: FlopCounterMode's total / 2 at 224x224), and
their weights loaded both ways (BN statistics randomised, so a miswired BN shows)."""

import pytest

torch = pytest.importorskip("torch")
models = pytest.importorskip("torchvision.models")
timm = pytest.importorskip("timm")
import resdsl  # noqa: E402
from examples.family import FAMILY, library_model, measure  # noqa: E402  (the README's table)
from tests.conftest import ARCHS  # noqa: E402
from tests.test_torch_backend import assert_weights_load_both_ways  # noqa: E402

# the layouts whose strides and pools an odd size tests hardest, run at 201 as well
AT_201 = ("resnet18-d", "resnet50-v2", "resnet50-v1.5")
# torchvision's layouts that timm builds too, under the same names
ALSO_TIMM = [("resnet18", "resnet18"), ("resnet50-v1.5", "resnet50"),
             ("resnext50-32x4d", "resnext50_32x4d"), ("wide-resnet50-2", "wide_resnet50_2")]


@pytest.mark.parametrize("arch, library, name", FAMILY)
def test_counts_equal_the_librarys_model_measured_by_torch(arch, library, name):
    summary = resdsl.count(ARCHS / f"{arch}.arch")
    assert measure(library, name) == (summary.params, summary.macs)


@pytest.mark.parametrize("arch, library, name",
                         FAMILY + [(f, "timm", m) for f, m in ALSO_TIMM])
def test_weights_load_both_ways_with_equal_outputs(arch, library, name):
    torch.manual_seed(0)
    assert_weights_load_both_ways(resdsl.load(ARCHS / f"{arch}.arch", naming=library),
                                  library_model(library, name), tolerance=1e-4,
                                  sizes=(64, 97, 201) if arch in AT_201 else (64, 97))


@pytest.mark.parametrize("depth, params", [(164, 1.7e6), (1001, 10.2e6)])
def test_preact_resnet_has_the_eccv_2016_sizes(depth, params):
    """Table 2 of "Identity Mappings in Deep Residual Networks": 1.7M and 10.2M, given to
    one decimal (ResNet-1001 counts 10.33M with its BNs' 0.15M, 1.3% over the paper's)."""
    summary = resdsl.count(ARCHS / "preact-resnet.arch", depth=depth)
    assert abs(summary.params - params) / params < 0.015
    assert summary.layers == depth


def test_wrn_28_10_has_the_authors_count():
    """36,479,194 parameters, as the WRN authors' code counts WRN-28-10."""
    assert resdsl.count(ARCHS / "wrn.arch", depth=28, k=10).params == 36_479_194


def test_compile_writes_timms_names(cli):
    code, out, err = cli("compile", ARCHS / "resnet50-d.arch", "--naming", "timm")
    assert code == 0, err
    assert 'self.downsample = nn.Sequential(\n                nn.AvgPool2d(2, stride=stride' in out
    assert "self.conv1 = nn.Sequential(\n" in out and "self.act1 = nn.ReLU" in out
