"""The ResNet family in archs/ as a table: each file's parameters and multiply-adds (at
224x224) from resdsl's static count, beside the torchvision or timm model it matches,
measured by torch itself on that library's model (sum of numel; FlopCounterMode's total
/ 2), where the library is installed.

    python examples/family.py            # the README's table
    python examples/family.py --no-measure
"""

from __future__ import annotations

import argparse
from pathlib import Path

import resdsl

ARCHS = Path(__file__).resolve().parent.parent / "archs"

# (file in archs/, library, model): the model each family file matches
FAMILY = [
    ("resnext50-32x4d", "torchvision", "resnext50_32x4d"),
    ("resnext101-32x8d", "torchvision", "resnext101_32x8d"),
    ("resnext101-64x4d", "torchvision", "resnext101_64x4d"),
    ("wide-resnet50-2", "torchvision", "wide_resnet50_2"),
    ("wide-resnet101-2", "torchvision", "wide_resnet101_2"),
    ("resnet18-d", "timm", "resnet18d"),
    ("resnet26-d", "timm", "resnet26d"),
    ("resnet50-d", "timm", "resnet50d"),
    ("se-resnet50", "timm", "seresnet50"),
    ("se-resnext50-32x4d", "timm", "seresnext50_32x4d"),
    ("resnet50-v2", "timm", "resnetv2_50"),
]


def library_model(library: str, name: str):
    """The library's model, untrained (nothing is downloaded)."""
    if library == "timm":
        import timm

        return timm.create_model(name, pretrained=False)
    import torchvision.models

    return getattr(torchvision.models, name)()


def measure(library: str, name: str) -> tuple[int, int] | None:
    """(params, multiply-adds) of the library's model as torch counts them, on the meta
    device (no memory, no time); None where the library is not installed."""
    try:
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        with torch.device("meta"):
            model = library_model(library, name).eval()
            with FlopCounterMode(display=False) as counter:
                model(torch.empty(1, 3, 224, 224))
    except ImportError:
        return None
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-measure", action="store_true",
                        help="only resdsl's counts, without building the libraries' models")
    args = parser.parse_args()
    print("| file | params | GMACs (224x224) | matches | torch's count of that model |")
    print("|---|---:|---:|---|---|")
    for arch, library, name in FAMILY:
        summary = resdsl.count(ARCHS / f"{arch}.arch")
        measured = None if args.no_measure else measure(library, name)
        verdict = ("not measured" if measured is None else
                   "equal" if measured == (summary.params, summary.macs) else
                   f"DIFFERS: {measured[0]:,} params, {measured[1]:,} MACs")
        print(f"| `{arch}.arch` | {summary.params:,} | {summary.macs / 1e9:.3f} | "
              f"{library} `{name}` | {verdict} |")


if __name__ == "__main__":
    main()
