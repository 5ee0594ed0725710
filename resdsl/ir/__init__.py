"""The IR: one networkx.DiGraph per network, a node per op (docs/ARCHITECTURE.md, "The IR
contract"); the ops themselves are declared in `resdsl.ops`."""
