"""dockyard: Docker 1.x's host bootstrap as declarative, idempotent desired state."""

__version__ = "0.1.0"
