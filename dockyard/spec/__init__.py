"""What is wanted: the spec, its defaults, and loading it with located errors."""

from dockyard.spec import plugins

with plugins.without():
    from dockyard.spec import model  # noqa: F401  (built here, without pydantic's plugins)

from dockyard.spec.loader import load, load_text
from dockyard.spec.model import Spec

__all__ = ["Spec", "load", "load_text"]
