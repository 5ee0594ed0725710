"""The IR: one networkx.DiGraph per network, a node per op (see DESIGN.md, "The IR contract")."""

from resdsl.ir import ops as _builtin_ops  # noqa: F401  (registers the built-in ops)
