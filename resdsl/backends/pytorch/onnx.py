"""A built module as an ONNX model, for the tools that read ONNX (Netron, onnxruntime,
TensorRT). torch's exporter does the work; this fixes what a reader of the file relies
on: the opset, a batch dimension of any size, and the input and output names."""

from __future__ import annotations

from resdsl.backends.pytorch.plan import Plan
from resdsl.errors import ResdslError

OPSET = 18  # read by onnxruntime 1.14+ and TensorRT 8.6+


def export(network_class, plan: Plan) -> bytes:
    """A freshly initialised `network_class` as a serialised ONNX model, in eval mode (BN
    uses its running statistics). The weights come from seed 0, so the same network
    gives the same bytes, whatever torch's global random state."""
    for package in ("onnx", "onnxscript"):  # torch's exporter needs both
        try:
            __import__(package)
        except ImportError:
            raise ResdslError(f"writing ONNX needs the '{package}' package, which is not "
                              "installed", hint="pip install 'resdsl[onnx]' (onnx and "
                              "onnxscript)", code="E708") from None
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = network_class().eval()
    example = torch.zeros(2, *plan.input_shape)
    program = torch.onnx.export(
        model, (example,), dynamo=True, opset_version=OPSET, verbose=False,
        input_names=["image"], output_names=["logits"],
        dynamic_shapes=({0: torch.export.Dim("batch")},))
    return program.model_proto.SerializeToString()
