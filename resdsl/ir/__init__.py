"""The IR: one networkx.DiGraph per network, a node per op (see DESIGN.md, "The IR contract")."""
