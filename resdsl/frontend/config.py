"""Per-network settings (input, shortcut, stride_on, bias, bn, classes, preact,
projection, act) and `--set`.

A setting is written `key value` in the file; `--set key=value` overrides it, and also
overrides a parameter declared with `param`. Both are checked here, where the span of
the text (or the `--set` that gave the value) is still known.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from resdsl.errors import Diagnostic, ResdslError, Span, did_you_mean
from resdsl.frontend import ast
from resdsl.frontend.evaluate import Number, evaluate
from resdsl.ops.registry import activations
from resdsl.safety import check_number, whole_number
from resdsl.frontend.resolve import NetworkSpec

SHORTCUT_OPTIONS = ("A", "B", "C", "highway", "none")


@dataclass(frozen=True)
class Config:
    input_shape: tuple[int, int, int]
    shortcut: str | None  # A, B, C, none; None when the file does not say
    stride_on: str  # '1x1': the paper's v1; '3x3': torchvision's v1.5
    bias: bool
    bn: bool
    classes: int
    # He et al., ECCV 2016: BN and ReLU before each conv of a unit, nothing after the add,
    # one BN-ReLU after the last unit
    preact: bool = False
    projection: str = "conv"  # "pooled": ResNet-D's 2x2 avgpool before the 1x1 conv
    act: str = "relu"  # the activation where a layer or block names none
    input_span: Span | None = None  # where `input` was written, for the input node
    # The input the file declares: its output-size columns are read at this size, even
    # when `--set input=` runs the network on another (None: the file declares none).
    written_input: tuple[int, int, int] | None = None


def _input(text: str) -> tuple[int, int, int]:
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 3 or not all(_digits(p) and whole_number(p, None) > 0 for p in parts):
        raise ValueError("input is channels x height x width, e.g. 3x224x224")
    return tuple(int(p) for p in parts)


def _shortcut(text: str) -> str:
    for option in SHORTCUT_OPTIONS:
        if text.lower() == option.lower():
            return option
    raise ValueError("shortcut is A (zero-padding identity), B (projection where the shape "
                     "changes), C (projection everywhere), highway (a gated identity, "
                     "Srivastava et al. 2015) or none (a plain network)")


def _stride_on(text: str) -> str:
    if text in ("1x1", "3x3"):
        return text
    raise ValueError("stride_on is 1x1 (the paper's v1: stride on the first 1x1 conv) or "
                     "3x3 (torchvision's v1.5: stride on the 3x3 conv)")


def _projection(text: str) -> str:
    if text in ("conv", "pooled"):
        return text
    raise ValueError("projection is conv (a strided 1x1 conv, the paper's) or pooled "
                     "(ResNet-D: a 2x2 average pool, then a 1x1 conv)")


OTHER_NAMES = {"swish": "silu", "hard_swish": "hardswish", "hswish": "hardswish"}


def _act(text: str) -> str:
    if text in activations():
        return text
    if text in OTHER_NAMES:
        raise ValueError(f"{text} is {OTHER_NAMES[text]} here: write `act {OTHER_NAMES[text]}`")
    close = did_you_mean(text, activations())
    raise ValueError(f"{close + ' ' if close else ''}act is an activation: "
                     f"{', '.join(activations())} (or an op declared with activation=True)")


def _switch(text: str) -> bool:
    if text in ("on", "off"):
        return text == "on"
    raise ValueError("this setting is on or off")


def _classes(text: str) -> int:
    if _digits(text) and whole_number(text, None) > 0:
        return int(text)
    raise ValueError("classes is a whole number of at least 1")


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


# name -> (how to read the value, default when the file does not say)
SETTINGS: dict[str, tuple[Callable[[str], object], str | None]] = {
    "input": (_input, None),
    "shortcut": (_shortcut, None),
    "stride_on": (_stride_on, "1x1"),
    "bias": (_switch, "off"),
    "bn": (_switch, "on"),
    "classes": (_classes, "1000"),
    "preact": (_switch, "off"),
    "projection": (_projection, "conv"),
    "act": (_act, "relu"),
}


# `resnet50@stride_on=3x3,bias=on`: a network named with --set values of its own
VARIANT = re.compile(r"(?P<network>.+?)@(?P<sets>[A-Za-z_]\w*=[^,=@]+(,[A-Za-z_]\w*=[^,=@]+)*)")


def split_variant(name: str) -> tuple[str, list[tuple[str, str]]]:
    """A network's name (a path or a bundled name) and the `--set` values written after
    an `@` in it, so that one file can stand twice in one table, once per value. A name
    with an `@` that reads otherwise, or names a file, is left whole: a path may hold one."""
    match = VARIANT.fullmatch(name)
    if match is None or os.path.lexists(name):
        return name, []
    return match["network"], [tuple(item.split("=", 1)) for item in match["sets"].split(",")]


def last_of(pairs, given_as: str = "--set ") -> tuple[dict[str, str], list[Diagnostic]]:
    """`--set` pairs as the values that count (the last of each name), and a W106 for
    each name given more than once, which would otherwise pass in silence. `given_as`
    says where they were written: `--set ` or `cifar-resnet@`."""
    values: dict[str, list[str]] = {}
    for key, value in pairs:
        values.setdefault(key, []).append(str(value))
    return {key: given[-1] for key, given in values.items()}, [
        Diagnostic("W106", f"{given_as}{key} is given {len(given)} times "
                           f"({', '.join(given)}): the last, {key}={given[-1]}, counts", None,
                   severity="warning", hint="give each name once" + (
                       "; to compare values side by side, name the network once per value: "
                       f"`resdsl flops FILE@{key}={given[0]} FILE@{key}={given[-1]}`"
                       if len(set(given)) > 1 else ""))
        for key, given in values.items() if len(given) > 1]


def check_overrides(spec: NetworkSpec, overrides: Mapping[str, object]) -> None:
    """Refuse a `--set` name that is neither a setting nor a parameter of this network."""
    for key in overrides:
        if key not in SETTINGS and key not in spec.params:
            known = sorted(spec.params) + sorted(SETTINGS)
            hint = did_you_mean(key, known) or (
                f"this network's parameters: {', '.join(sorted(spec.params)) or 'none'}; "
                f"settings: {', '.join(SETTINGS)}")
            raise ResdslError(f"--set {key}: '{spec.name}' has no parameter or setting "
                              f"'{key}'", hint=hint, code="E206")


def resolve_config(spec: NetworkSpec, overrides: Mapping[str, object]) -> Config:
    values = {}
    for key, (read, default) in SETTINGS.items():
        written = spec.settings.get(key)
        if key in overrides:
            text, span, origin = str(overrides[key]), None, f"--set {key}={overrides[key]}: "
        elif written is not None:
            text, span, origin = written.value, written.value_span, ""
        else:
            text, span, origin = default, None, ""
        if text is None:
            values[key] = None
            continue
        try:
            values[key] = read(text)
        except ValueError as error:
            raise ResdslError(f"{origin}bad value '{text}' for {key}", span,
                              hint=str(error), code="E301") from None
    for setting in spec.settings.values():
        if setting.key not in SETTINGS:
            raise ResdslError(f"unknown setting '{setting.key}'", setting.span,
                              hint=did_you_mean(setting.key, SETTINGS)
                              or f"settings are: {', '.join(SETTINGS)}", code="E203")
    if values["input"] is None:
        raise ResdslError("the network has no input size", spec.span,
                          hint="add a line such as `input 3x224x224`", code="E401")
    written = spec.settings.get("input")
    return Config(input_shape=values["input"], shortcut=values["shortcut"],
                  stride_on=values["stride_on"], bias=values["bias"], bn=values["bn"],
                  classes=values["classes"], preact=values["preact"],
                  projection=values["projection"], act=values["act"], input_span=getattr(written, "span", None),
                  written_input=_written_input(written))


def _written_input(written: ast.Setting | None) -> tuple[int, int, int] | None:
    """The file's own input size; None when it writes none, or writes one that `--set`
    replaced before it was ever read (an unreadable one is then not the file's error)."""
    try:
        return _input(written.value) if written is not None else None
    except ValueError:
        return None


def parameter_values(spec: NetworkSpec, overrides: Mapping[str, object],
                     config: Config) -> dict[str, Number]:
    """Each parameter's value: its `--set` override, else its default, in file order."""
    env: dict[str, Number] = {"classes": config.classes}
    for name, decl in spec.params.items():
        if name in overrides:
            env[name] = _number(name, overrides[name])
        else:
            env[name] = evaluate(decl.default, env)
    return env


# A --set number as a file would write it, or with an exponent (1e-3); ASCII only, where
# float() also takes '٣', '1_0' and 'nan'.
DECIMAL = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")


def _number(name: str, value: object) -> Number:
    what = f"--set {name}={value}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return check_number(value, None, what)
    text = str(value)
    if _digits(text):
        return whole_number(text, None, what)
    if DECIMAL.fullmatch(text):
        return check_number(float(text), None, what)
    raise ResdslError(f"--set {name}={text}: a parameter's value is a number", code="E306")
