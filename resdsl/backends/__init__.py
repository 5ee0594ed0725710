"""Backends: what a verified graph becomes (reports here; torch and graphviz later)."""
