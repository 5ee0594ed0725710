"""Every exact reference count (torch's own numel and FlopCounterMode of the same
networks, taken when the design was set), and the paper's rounded figures."""

import pytest

from resdsl import count
from tests.conftest import ARCHS

# (file, --set overrides, params, MACs): the exact reference counts
EXACT = [
    ("resnet18.arch", {}, 11_689_512, 1_814_073_344),
    ("resnet34.arch", {}, 21_797_672, 3_663_761_408),
    ("resnet50.arch", {}, 25_557_032, 3_857_973_248),
    ("resnet50-v1.5.arch", {}, 25_557_032, 4_089_184_256),
    ("resnet101.arch", {}, 44_549_160, 7_570_194_432),
    ("resnet101-v1.5.arch", {}, 44_549_160, 7_801_405_440),
    ("resnet152.arch", {}, 60_192_808, 11_282_415_616),
    ("resnet152-v1.5.arch", {}, 60_192_808, 11_513_626_624),
    ("plain18.arch", {}, 11_515_688, 1_794_805_760),
    ("plain34.arch", {}, 21_623_848, 3_644_493_824),
    ("vgg16.arch", {}, 138_357_544, 15_470_264_320),
    ("vgg19.arch", {}, 143_667_240, 19_632_062_464),
    ("cifar-resnet.arch", {}, 269_722, 40_551_040),
    ("cifar-resnet.arch", {"shortcut": "B"}, 272_474, 40_813_184),
    ("cifar-resnet.arch", {"n": 9}, 853_018, 125_485_696),
    ("cifar-resnet.arch", {"n": 18}, 1_727_962, 252_887_680),
    ("cifar-resnet.arch", {"n": 200}, 19_421_274, 2_829_238_912),
]


@pytest.mark.parametrize("name, overrides, params, macs", EXACT,
                         ids=[f"{e[0]}{e[1] or ''}" for e in EXACT])
def test_exact_counts(name, overrides, params, macs):
    summary = count(ARCHS / name, **overrides)
    assert (summary.params, summary.macs) == (params, macs)
    assert summary.flops == 2 * macs


@pytest.mark.parametrize("name, gmacs", [
    ("resnet18.arch", 1.8), ("resnet34.arch", 3.6), ("resnet50.arch", 3.8),
    ("resnet101.arch", 7.6), ("resnet152.arch", 11.3), ("vgg19.arch", 19.6)])
def test_paper_table1_flops(name, gmacs):
    """Table 1's bottom row (and sec. 3.3 for VGG-19). The paper neither rounds nor
    truncates consistently (3.66 is printed 3.6, 7.57 is printed 7.6), so the check is
    agreement within one unit of its last printed digit."""
    assert abs(count(ARCHS / name).macs / 1e9 - gmacs) < 0.1


@pytest.mark.parametrize("n, millions", [(3, 0.27), (5, 0.46), (7, 0.66), (9, 0.85),
                                         (18, 1.7), (200, 19.4)])
def test_paper_table6_params(n, millions):
    """Table 6: parameters of the CIFAR-10 ResNets, as rounded in the paper."""
    params = count(ARCHS / "cifar-resnet.arch", n=n).params
    digits = 2 if millions < 1 else 1
    assert round(params / 1e6, digits) == millions


def test_plain_nets_have_the_same_layers_minus_projections():
    """cifar-plain is cifar-resnet without shortcuts: option A adds no parameters."""
    assert count(ARCHS / "cifar-plain.arch").params == count(ARCHS / "cifar-resnet.arch").params
