"""The op registry: every op kind of the IR declared once, as MLIR's ODS and xDSL's IRDL
declare theirs, and looked up by every pass and backend.

An `OpDef` says what a node of that op carries (its arguments, with types and defaults),
how many inputs it takes, what it does to a shape, what it costs (params, multiply-adds,
other element ops), how PyTorch builds it, what autograd keeps of it for the backward
pass, and how the paper's figure labels it. Nothing else in resdsl keeps a table of op
names: a new op kind is a grammar rule (or none, through the general `name(args)` form),
one `register(OpDef(...))`, and tests. The built-in ops are declared in `resdsl.ops.builtin`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from resdsl.ops.shapes import Shape, feature_map, numel

REQUIRED = object()  # an argument without a default


@dataclass(frozen=True)
class Arg:
    """One argument a node of the op carries, with its type and default."""

    name: str
    type: type | tuple[type, ...]
    default: object = REQUIRED
    doc: str = ""


Attrs = Mapping[str, object]
ShapeRule = Callable[[Attrs, Sequence[Shape]], Shape]
CostRule = Callable[[Attrs, Sequence[Shape], Shape], int]


def same_shape(a: Attrs, inputs: Sequence[Shape]) -> Shape:
    """The output has the shape of the (first) input."""
    return inputs[0]


def same_feature_map(a: Attrs, inputs: Sequence[Shape]) -> Shape:
    return feature_map(a["op"], inputs[0])


def no_cost(a: Attrs, inputs: Sequence[Shape], out: Shape) -> int:
    return 0


def per_element(a: Attrs, inputs: Sequence[Shape], out: Shape) -> int:
    """One op per output element (ReLU, add, BN folded into one multiply-add)."""
    return numel(out)


def no_bytes(a: Attrs, out: Shape) -> int:
    return 0


@dataclass(frozen=True)
class Kept:
    """A tensor autograd keeps for an op's backward pass, as torch's saved-tensor hooks
    see it: the op's first input, each of its inputs or its output (a storage that other
    ops may keep too, and that is counted once), or a tensor of its own (maxpool's
    indices, dropout's mask, BN's batch statistics) of `elements` and `dtype`: the
    activations' type ("activation": float32, or half under --amp), "float32", "int64",
    "mask" (dropout's: float32 noise on a CPU, bool on a GPU) or "autocast" (the half
    copy of a weight that autocast makes; nothing without --amp)."""

    tensor: str  # "input", "inputs", "output" or "own"
    elements: CostRule = lambda a, inputs, out: numel(out)
    dtype: str = "activation"
    per_image: bool = True  # elements per image (a map) or per call (statistics, weights)


INPUT, INPUTS, OUTPUT = Kept("input"), Kept("inputs"), Kept("output")


def keeps(*kept: Kept) -> Callable[[Attrs], tuple[Kept, ...]]:
    """An op that keeps the same tensors whatever its arguments."""
    return lambda a: kept


@dataclass(frozen=True)
class OpDef:
    name: str
    summary: str  # one line, for docs and --dump-ir readers
    args: tuple[Arg, ...] = ()
    arity: int = 1  # inputs, in the order of the edges' `input` attribute
    shape: ShapeRule = same_shape
    params: CostRule = no_cost  # trainable parameters, as sum(p.numel()) counts them
    macs: CostRule = no_cost  # multiply-adds, the paper's "FLOPs": conv and fc only
    other_ops: CostRule = no_cost  # element ops, reported with --all-ops
    # The expression that builds its nn.Module in generated source, from the node and
    # its input's shape; None where the op lives inside a unit's forward (add, pad).
    torch: Callable[[Attrs, Shape], str] | None = None
    kept: Callable[[Attrs], tuple[Kept, ...]] = keeps()  # what backward keeps of it
    # Writes its output into its first input's storage where nothing else reads that
    # input (ReLU with inplace=True, `out += identity`): an input it keeps is then a copy.
    in_place: bool = False
    # Runs in half precision under autocast (--amp): a float32 input is cast, and the
    # cast copy is what backward keeps.
    autocast: bool = False
    buffers: Callable[[Attrs, Shape], int] = no_bytes  # bytes of state not trained
    # The box text in the paper's figures; None: not drawn (BN, ReLU, add, ...).
    label: Callable[[Attrs], str] | None = None
    figure_style: Mapping[str, str] = field(default_factory=dict)  # graphviz node attributes
    # Inside a generated unit's forward, an op called without a module: its expression
    # on its inputs' expressions (F.relu(out), out + identity).
    unit_call: Callable[[Sequence[str]], str] | None = None
    # ... or, for a merge, its in-place statement on the variable holding its first input
    # (`out += identity`, as torchvision writes it)
    unit_update: Callable[[Sequence[str]], str] | None = None
    # An element-wise nonlinearity that may stand where the paper has ReLU: the `act`
    # setting, or written after a conv, an fc or a block (`3x3, 64, silu`).
    activation: bool = False
    weighted: bool = False  # a layer of the paper's depth (conv, fc)
    strided: bool = False  # takes a stride, which an output-size column may imply
    flat_input: bool = False  # takes a vector: a flatten goes before it in torch
    left_to_loss: bool = False  # dropped from a module's end, as the loss applies it

    def defaults(self) -> dict[str, object]:
        return {arg.name: arg.default for arg in self.args if arg.default is not REQUIRED}


_REGISTRY: dict[str, OpDef] = {}


def register(op: OpDef, *, replace: bool = False) -> OpDef:
    """Declare an op kind, built-in or a user's own (`resdsl.register_op`)."""
    if op.name in _REGISTRY and not replace:
        raise ValueError(f"op '{op.name}' is already registered")
    if not op.name.isidentifier():
        raise ValueError(f"an op's name is an identifier, not {op.name!r}")
    _REGISTRY[op.name] = op
    return op


def unregister(name: str) -> None:
    """Take a user's op away again (tests, notebooks)."""
    del _REGISTRY[name]


def op(name: str) -> OpDef:
    """The declaration of op `name`; a KeyError names the ops there are."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no op '{name}' is registered (ops: {', '.join(sorted(_REGISTRY))})")


def registered() -> dict[str, OpDef]:
    return dict(_REGISTRY)


def activations() -> list[str]:
    """The ops that may replace ReLU, built-in and registered, by name."""
    return sorted(name for name, declared in _REGISTRY.items() if declared.activation)


def output_shape(attrs: Attrs, inputs: Sequence[Shape]) -> Shape:
    """What the node's op makes of its inputs' shapes (a `ShapeError` if it cannot)."""
    return op(attrs["op"]).shape(attrs, inputs)
