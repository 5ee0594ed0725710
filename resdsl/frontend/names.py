"""The one rule for a stage name. A stage becomes an attribute of the generated network
(`self.conv2_x`) and the first part of its state-dict keys, so its name must be plain
ASCII (`[A-Za-z][A-Za-z0-9_]*`: Python folds other letters to ASCII ones, so `ｃｏｎｖ1` and
`conv1` would be one attribute), not a Python keyword, and not a member that an
nn.Module or the generated class already has (`training`, `forward`, `to`,
`init_weights`, ...). The front end checks it, so every command refuses the same names.
"""

from __future__ import annotations

import keyword
import re

from resdsl.errors import ResdslError, Span

# The public members of an nn.Module instance (torch 2.15; tests/test_names.py checks
# that the installed torch has no others), and those the generated classes add.
MODULE_MEMBERS = frozenset("""
    T_destination add_module apply bfloat16 buffers call_super_init children compile cpu
    cuda double dump_patches eval extra_repr float forward get_buffer get_extra_state
    get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers
    named_children named_modules named_parameters parameters register_backward_hook
    register_buffer register_forward_hook register_forward_pre_hook
    register_full_backward_hook register_full_backward_pre_hook
    register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module
    register_parameter register_state_dict_post_hook register_state_dict_pre_hook
    requires_grad_ set_extra_state set_submodule share_memory state_dict to to_empty train
    training type xpu zero_grad
""".split())
GENERATED_MEMBERS = frozenset({"init_weights", "from_unfolded", "zero_init_residual",
                               "feature_info"})
RESERVED = MODULE_MEMBERS | GENERATED_MEMBERS
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def check_stage_name(name: str, span: Span | None, reserved=RESERVED) -> None:
    if _PLAIN.fullmatch(name) is None:
        why = ("starts with '_', which Python and torch keep for private members"
               if name.startswith("_") else "is not plain ASCII letters, digits and '_'")
        raise ResdslError(f"the stage name '{name}' {why}", span,
                          hint="stage names become module attributes; use one such as "
                               "conv2_x", code="E703")
    if keyword.iskeyword(name) or name in reserved:
        kind = "a Python keyword" if keyword.iskeyword(name) else "a member of nn.Module"
        raise ResdslError(f"the stage name '{name}' is {kind}, which the generated network "
                          "would overwrite", span,
                          hint=f"rename the stage, for example to '{name}_x'", code="E703")
