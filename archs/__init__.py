"""The networks that ship with resdsl, as data (`resdsl render` draws Figure 3 from them)."""
