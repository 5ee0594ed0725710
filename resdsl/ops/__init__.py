"""What an op is: the registry every stage asks (the front end's general op form, the
passes, the backends), the built-in ops declared in it, and the shape arithmetic of their
rules. The first stage of the pipeline: it imports nothing of resdsl but errors."""

from resdsl.ops import activations as _activations  # noqa: F401  (registers them)
from resdsl.ops import builtin as _builtin_ops  # noqa: F401  (registers the built-in ops)
