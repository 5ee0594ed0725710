"""One kind of residual (or plain) unit as a class of the generated file: its modules,
built by their ops' own declarations with symbolic widths, and a forward written from the
kind's steps in data-flow order, so that it reads like torchvision's BasicBlock and cannot
disagree with the graph."""

from __future__ import annotations

from resdsl.backends.pytorch.naming import shortcut_placeholders, unit_member
from resdsl.backends.pytorch.plan import Plan
from resdsl.backends.pytorch.unit_plan import Step, UnitKind
from resdsl.backends.pytorch.pytext import INDENT, literal, sequential
from resdsl.ops.registry import op


class UnitClass:
    """One unit kind as a class, its members named as the plan's naming says."""

    def __init__(self, plan: Plan, kind: UnitKind, name: str):
        self.plan, self.kind, self.name = plan, kind, name
        self.member = lambda m: unit_member(m, plan.naming, plan.preact, plan.pooled)
        steps = kind.steps
        # A group (`se`) whose members run one after another is one nn.Sequential.
        groups: dict[str, list[Step]] = {}
        for step in steps:
            if "." in step.member and step.branch != "residual":  # not se.scale, which mixes
                groups.setdefault(step.member.split(".")[0], []).append(step)
        self.groups = {g: members for g, members in groups.items() if _chain(members)}

    def text(self) -> str:
        kind = self.kind
        doc = self.docstring()
        args = "in_channels: int, channels: tuple[int, ...], stride: int"
        if kind.residual:
            args += ", shortcut: str"
        body = [f"class {self.name}(nn.Module):", f'{INDENT}"""{doc}"""', "",
                f"{INDENT}def __init__(self, {args}):", f"{INDENT * 2}super().__init__()"]
        body += [f"{INDENT * 2}{line}" for line in self.modules()]
        if kind.residual:
            body += self.shortcut_init()
        body += ["", f"{INDENT}def forward(self, x):"]
        body += [INDENT * 2 + line for line in self.forward()]
        last_bn = self.last_bn()
        if kind.residual and last_bn and not self.plan.preact:
            body += ["", f"{INDENT}def zero_init_residual(self) -> None:",
                     f'{INDENT * 2}"""Start as the identity: zero the last BN\'s scale '
                     f'(Goyal et al., 2017)."""',
                     f"{INDENT * 2}nn.init.zeros_(self.{self.member(last_bn)}.weight)"]
        return "\n".join(body)

    def docstring(self) -> str:
        kind = self.kind
        convs = [s for s in kind.steps if s.op == "conv" and s.branch == "residual"]
        layers = ", ".join(_conv_words(dict(s.args)) for s in convs)
        bn = any(s.op == "bn" and s.branch == "residual" for s in kind.steps)
        extras = [text for present, text in (
            (any(s.op == "dropout" for s in kind.steps), "dropout between convs"),
            (any(s.branch == "se" for s in kind.steps), "squeeze-excitation (Hu et al., 2018)"),
            (any(s.branch == "gate" for s in kind.steps), "a highway gate (Srivastava et al.)"))
            if present]
        acts = [s.op for s in kind.steps if op(s.op).activation and s.branch != "se"]
        act = " and ".join(_ACT_WORDS.get(name, name) for name in dict.fromkeys(acts))
        if not kind.residual:
            return f"A plain unit: {layers}{', each with BN' if bn else ''} and {act}."
        last = _ACT_WORDS.get(acts[-1], acts[-1]) if acts else act
        order = (f"pre-activation (ECCV 2016): BN and {act} before each conv, nothing after "
                 "the add" if self.plan.preact else
                 f"each with BN; the shortcut joins before the last {last}" if bn else
                 f"the shortcut joins before the last {last}")
        more = f"; {', '.join(extras)}" if extras else ""
        return f"A residual unit: {layers};\n{INDENT}{order}{more}."

    def last_bn(self) -> str | None:
        bns = [s.member for s in self.kind.steps if s.op == "bn" and s.branch == "residual"]
        return bns[-1] if bns else None

    def modules(self) -> list[str]:
        lines = []
        for module, steps in self._calls():
            if module is None:
                continue
            if len(steps) > 1 or "." in steps[0].member and steps[0].branch != "residual":
                named = [(self.member(s.member).split(".", 1)[1], self.build(s)) for s in steps]
                lines.append(f"self.{module} = {sequential(named, INDENT * 2)}")
            else:
                lines.append(f"self.{module} = {self.build(steps[0])}")
        return lines

    def build(self, step: Step) -> str:
        """The module's constructor, from its op's declaration, with symbolic widths."""
        return op(step.op).torch({"op": step.op, **dict(step.args)}, (step.in_width,))

    def shortcut_init(self) -> list[str]:
        kinds = self.plan.shortcut_kinds[self.kind]
        name = self.member("shortcut.conv").split(".")[0]
        builders = {option: self.shortcut_module(option, steps) for option, steps in kinds.items()}
        if len(kinds) == 1:
            return [f"{INDENT * 2}self.{name} = {next(iter(builders.values()))}"]
        lines = []
        for index, option in enumerate(kinds):
            word = "if" if index == 0 else "elif"
            condition = (f"{word} shortcut == {literal(option)}:" if index < len(kinds) - 1
                         else "else:")
            lines += [f"{INDENT * 2}{condition}",
                      f"{INDENT * 3}self.{name} = {builders[option].replace(chr(10), chr(10) + INDENT)}"]
        return lines

    def shortcut_module(self, option: str, steps: tuple[Step, ...]) -> str:
        if option == "identity":
            return "nn.Identity()"
        if option == "zero-pad":
            (pad,) = steps
            stride = dict(pad.args)["stride"]
            return f"ZeroPadShortcut({stride}, {dict(pad.args)['out_channels']} - in_channels)"
        modules = [(self.member(s.member).split(".", 1)[1], self.build(s)) for s in steps]
        placeholders = shortcut_placeholders(self.plan.naming, self.plan.preact, self.plan.pooled)
        modules = [(p, "nn.Identity()") for p in placeholders
                   if p not in [m[0] for m in modules]] + modules
        if all(name.isdigit() for name, _ in modules):
            modules.sort(key=lambda m: int(m[0]))
        return sequential(modules, INDENT * 2)

    def forward(self) -> list[str]:
        """The unit's forward, its steps in the data-flow order the IR holds them. A
        module's output read only by the next step on its branch is passed inline
        (`self.bn1(self.conv1(x))`); any other output is held in its branch's variable:
        `out` on the residual branch, `scale` for SE, `gate` for a highway gate. The
        shortcut (`identity`) is taken right after what it reads, or, when that is the
        unit's input, just before the merge, as torchvision computes its downsample."""
        kind, calls = self.kind, self._calls()
        lines: list[str] = []
        values = {"": "x"}  # member -> the expression or variable holding its output
        for index, (module, steps) in enumerate(calls):
            first, last = steps[0], steps[-1]
            variable = VARIABLES[last.branch]
            if module is None and op(first.op).unit_update:  # out += identity
                if values[first.inputs[0]] != variable:
                    lines.append(f"{variable} = {values[first.inputs[0]]}")
                    values[first.inputs[0]] = variable
            if "shortcut" in first.inputs and "shortcut" not in values:
                lines.append(self._shortcut_call(values[kind.shortcut_source]))
                values["shortcut"] = "identity"
            args = [values[i] for i in first.inputs]
            if module is None and op(first.op).unit_update:
                lines.append(op(first.op).unit_update(args))
                values[last.member] = variable
                if index == len(calls) - 1:
                    lines.append(f"return {variable}")
                continue
            if module is None:  # an op without a module: its call (F.relu(...))
                expression = op(first.op).unit_call(args)
                if args[0] == "x":  # the unit's input is read again by the shortcut
                    expression = expression.replace(", inplace=True", "")
            else:
                expression = f"self.{module}({', '.join(args)})"
            if index == len(calls) - 1:
                lines.append(f"return {expression}")
                continue
            readers = [s for s in kind.steps if last.member in s.inputs]
            if kind.shortcut_source == last.member:
                readers.append(None)
            following = calls[index + 1][1][0]
            if module is not None and readers == [following] and \
                    VARIABLES[following.branch] == VARIABLES[last.branch]:
                values[last.member] = expression
            else:
                lines.append(f"{variable} = {expression}")
                values[last.member] = variable
            if kind.shortcut_source and kind.shortcut_source == last.member:
                lines.append(self._shortcut_call(values[last.member]))
                values["shortcut"] = "identity"
        return lines

    def _shortcut_call(self, source: str) -> str:
        return f"identity = self.{self.member('shortcut.conv').split('.')[0]}({source})"

    def _calls(self) -> list[tuple[str | None, list[Step]]]:
        """The steps as calls: (module attribute, its steps); a group's whole Sequential
        is one call, and an op without a module has attribute None."""
        calls, done = [], set()
        for step in self.kind.steps:
            group = step.member.split(".")[0]
            if group in self.groups and step in self.groups[group]:
                if group not in done:
                    done.add(group)
                    calls.append((self.member(group), self.groups[group]))
            elif op(step.op).unit_call is None:
                calls.append((self.member(step.member), [step]))
            else:
                calls.append((None, [step]))
        return calls


_ACT_WORDS = {"relu": "ReLU"}  # as the paper writes it; any other by its op's name


def _conv_words(args: dict) -> str:
    groups = f" (C={args['groups']})" if args["groups"] > 1 else ""
    return f"{args['kernel']}x{args['kernel']} conv{groups}"


VARIABLES = {"residual": "out", "merge": "out", "merged": "out", "se": "scale", "gate": "gate"}


def _chain(steps: list[Step]) -> bool:
    """Whether each step reads only the one before it (the first reads anything)."""
    return all(s.inputs == (prev.member,) for prev, s in zip(steps, steps[1:]))

