"""The renderer: IR graphs → columns of labelled boxes and shortcut arcs (`layout.py`) →
a graphviz figure in the style of the paper's Figure 3 (`draw.py`)."""
