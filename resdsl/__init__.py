"""resdsl: networks written like Table 1 of "Deep Residual Learning for Image Recognition",
compiled to a graph IR with shapes, parameter and multiply-add counts."""

from resdsl.api import build, count
from resdsl.errors import ResdslError

__all__ = ["build", "count", "ResdslError"]
__version__ = "0.1.0"
