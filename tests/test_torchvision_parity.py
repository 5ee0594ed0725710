"""Independent check: torchvision's own models, measured by torch itself, agree with the
static counts (parameters by numel, multiply-adds by torch's FlopCounterMode / 2)."""

import pytest

torch = pytest.importorskip("torch")
models = pytest.importorskip("torchvision.models")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from resdsl import count  # noqa: E402
from tests.conftest import ARCHS  # noqa: E402

PAIRS = [("resnet18.arch", "resnet18"), ("resnet34.arch", "resnet34"),
         ("resnet50-v1.5.arch", "resnet50"), ("resnet101-v1.5.arch", "resnet101"),
         ("resnet152-v1.5.arch", "resnet152"), ("vgg16.arch", "vgg16"), ("vgg19.arch", "vgg19")]


@pytest.mark.parametrize("arch, builder", PAIRS)
def test_counts_equal_torchvision_measured_by_torch(arch, builder):
    with torch.device("meta"):
        model = getattr(models, builder)().eval()
        x = torch.empty(1, 3, 224, 224)
        with FlopCounterMode(display=False) as counter:
            model(x)
    summary = count(ARCHS / arch)
    assert summary.params == sum(p.numel() for p in model.parameters())
    assert summary.macs == counter.get_total_flops() // 2
