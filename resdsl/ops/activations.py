"""The activations: ReLU, the paper's, and those that replace it in later networks.

Each is element-wise and has no parameters, so it costs one op per element (reported with
--all-ops) and no multiply-adds. What autograd keeps differs: ReLU keeps its output, a
storage the next layer keeps anyway; ReLU6, SiLU, GELU and hardswish keep their input,
which BN (keeping its own input, not its output) does not, and which, in place, is a copy.
"""

from __future__ import annotations

from resdsl.ops.registry import INPUT, OUTPUT, OpDef, keeps, per_element, register


def _activation(name: str, summary: str, module: str, in_place: bool, keeps_input: bool
                ) -> OpDef:
    inplace = "inplace=True" if in_place else ""
    return OpDef(name, summary, other_ops=per_element,
                 torch=lambda a, x: f"nn.{module}({inplace})",
                 kept=keeps(INPUT if keeps_input else OUTPUT), in_place=in_place,
                 unit_call=lambda x: f"F.{name}({x[0]}{', ' + inplace if inplace else ''})",
                 activation=True)


# name, summary, torch module, in place, keeps its input for backward
for _row in (("relu", "the rectifier (sec. 3.2)", "ReLU", True, False),
             ("relu6", "the rectifier capped at 6 (MobileNetV2)", "ReLU6", True, True),
             ("silu", "x * sigmoid(x), or swish (EfficientNet)", "SiLU", True, True),
             ("gelu", "x * Phi(x), the Gaussian error linear unit (ConvNeXt)", "GELU", False,
              True),
             ("hardswish", "x * relu6(x + 3) / 6 (MobileNetV3)", "Hardswish", True, True)):
    register(_activation(*_row))
