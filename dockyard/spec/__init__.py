"""What is wanted: the spec, its defaults, and loading it with located errors."""

from dockyard.spec.loader import load, load_text
from dockyard.spec.model import Spec

__all__ = ["Spec", "load", "load_text"]
