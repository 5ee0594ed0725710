"""The checks that hold a random valid network (`tests/fuzz_networks.py`) to torch,
for the property-based tests (`tests/test_fuzz.py`) and the long campaign
(`benchmarks/fuzz_campaign.py`).

`check_network` builds a network and compares it with what torch does: each module's
output shape in a real forward pass, params, MACs against torch's FlopCounterMode, each
layer of the graph run once by torch as the op it is (conv, BN, each activation, pool,
fc; dropout in a training step), the activations a training step keeps (equal to
torch's saved tensors), gradients reaching every parameter, ceil-mode average
pools dividing by the pixels each window covers, squeeze-excitation and highway gates
that, closed, leave each unit its shortcut, the compiled standalone source (equal
outputs) and a real `dot` render.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

# what torch runs (aten ops, in-place or not) for each op of the graph
ATEN = {"conv": ("convolution",), "fc": ("addmm", "mm"), "relu": ("relu",),
        "relu6": ("hardtanh",), "silu": ("silu",), "gelu": ("gelu",),
        "hardswish": ("hardswish",), "sigmoid": ("sigmoid",),
        "bn": ("native_batch_norm", "_native_batch_norm_legit",
               "_native_batch_norm_legit_no_training"),
        "maxpool": ("max_pool2d_with_indices", "max_pool2d"),
        "avgpool": ("avg_pool2d", "mean", "adaptive_avg_pool2d", "_adaptive_avg_pool2d")}


def check_network(path: Path, render: bool = True) -> None:
    """Every invariant of a valid network; an AssertionError says which one broke."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import resdsl
    from resdsl.backends.figure.draw import draw
    from resdsl.backends.figure.layout import layout
    from resdsl.backends.pytorch import memory
    from resdsl.backends.pytorch.plan import make_plan
    from resdsl.backends.summary import summarize
    from tests.saved_tensors import saved_for_backward

    graph = resdsl.build(path)
    summary = summarize(graph)
    model = resdsl.load(path).eval()
    assert sum(p.numel() for p in model.parameters()) == summary.params, "params"

    plan = make_plan(graph)
    seen, pools = {}, []
    modules = dict(model.named_modules())
    hooks = [modules[".".join(item.path)].register_forward_hook(
                 lambda _m, _i, out, key=".".join(item.path): seen.__setitem__(key, out.shape))
             for item in plan.items]
    hooks += [m.register_forward_hook(lambda m, i, _o: pools.append((m, i[0].shape)))
              for m in modules.values() if isinstance(m, torch.nn.AvgPool2d) and m.ceil_mode]
    x = torch.randn(2, *summary.input)
    with FlopCounterMode(display=False) as counter, _counting() as ran, torch.no_grad():
        out = model(x)
    for hook in hooks:
        hook.remove()
    for item in plan.items:
        key = ".".join(item.path)
        assert tuple(seen[key][1:]) == tuple(item.shape), f"shape of {key}"
    assert tuple(out.shape) == (2, *summary.output), "output shape"
    assert counter.get_total_flops() == 2 * 2 * summary.macs, "MACs against FlopCounterMode"
    ops = Counter(kind for _, kind in graph.nodes(data="op"))
    for kind, names in ATEN.items():
        assert sum(ran.counts[n] for n in names) == ops[kind], f"{kind} layers run by torch"
    for pool, shape in pools:  # Caffe's ceil mode: each window divides by what it covers
        assert torch.allclose(pool(torch.ones(shape)), torch.tensor(1.0)), f"{pool} of ones"

    compiled = _import_file(resdsl.source(path), path.parent / "compiled_net.py")
    twin = getattr(compiled, plan.class_name)().eval()
    twin.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(twin(x), out), "compiled source against resdsl.load"

    _check_closed_gates(model, plan, x)
    kept = memory.estimate(graph, 2, training=True).activations
    assert kept == saved_for_backward(model, x), "activations kept against saved tensors"
    with _counting() as ran:  # a training step: dropout runs, and every weight is reached
        (model.train()(x) * torch.randn(2, *summary.output)).sum().backward()
    assert ran.counts["bernoulli"] + ran.counts["native_dropout"] == ops["dropout"], "dropout"
    assert all(p.grad is not None and p.grad.isfinite().all() for p in model.parameters()), \
        "a parameter that the training step does not reach"

    figure = draw([layout(graph, 0)])
    if render:
        assert figure.pipe(format="svg").lstrip().startswith(b"<?xml"), "dot render"


def _check_closed_gates(model, plan, x) -> None:
    """Close each unit's squeeze-excitation (its last conv's weights 0, bias -30: the
    branch times ~0) and highway gate (T ~ 0): a residual unit with either is then its
    shortcut, then its activation. Highway gates start open halfway (bias 0)."""
    import torch
    import torch.nn.functional as F

    from resdsl.backends.pytorch.unit_plan import Unit

    acts = {"relu": F.relu, "relu6": F.relu6, "silu": F.silu, "gelu": F.gelu,
            "hardswish": F.hardswish}
    modules, inputs, failed, hooks = dict(model.named_modules()), {}, [], []
    for unit in plan.items:
        if not isinstance(unit, Unit) or not unit.kind.residual or unit.kind.shortcut_source:
            continue  # a plain unit, or a pre-activated unit's projection
        prefix, members = ".".join(unit.path), {step.member for step in unit.kind.steps}
        closed = [m for m in ("gate.conv", "se.fc2") if m in members]
        if not closed:
            continue
        if "gate.conv" in members:
            assert not modules[f"{prefix}.gate.conv"].bias.any(), f"{prefix}'s gate bias"
        with torch.no_grad():
            for member in closed:
                modules[f"{prefix}.{member}"].weight.zero_()
                modules[f"{prefix}.{member}"].bias.fill_(-30.0)
        merged = [acts[step.op] for step in unit.kind.steps if step.branch == "merged"]
        act = merged[0] if merged else (lambda t: t)

        def check(module, args, out, key=prefix, act=act):
            if not torch.allclose(out, act(module.shortcut(inputs[key])), atol=1e-5):
                failed.append(key)
        hooks += [modules[prefix].register_forward_pre_hook(
                      lambda _m, args, key=prefix: inputs.__setitem__(key, args[0].clone())),
                  modules[prefix].register_forward_hook(check)]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    assert not failed, f"units not their shortcut with their gates closed: {failed}"


def _counting():
    """A torch dispatch mode that counts the aten ops run, in place or not (`relu_` is
    counted as `relu`)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.counts = Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.counts[func.overloadpacket.__name__.rstrip("_")] += 1
            return func(*args, **(kwargs or {}))
    return Ops()


def _import_file(text: str, path: Path):
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"fuzz_compiled_{abs(hash(text))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules.pop(spec.name, None)
    return module
