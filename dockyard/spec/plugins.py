"""The spec models are built without pydantic's plugins.

pydantic looks its plugins up (entry points, through `importlib.metadata`) when the first model
is built. The spec wants none: a plugin installed beside dockyard would watch or alter the
validation of every spec. And the look-up imports `importlib.metadata` and the `email`,
`zipfile` and `csv` modules it needs: about 14 ms of every run, for nothing.

`without()` puts a loader that finds no plugins (as `PYDANTIC_DISABLE_PLUGINS=__all__` would)
in pydantic's place while the models are built, then takes it away again (putting back pydantic's
own when the program had loaded it already), so that pydantic used by anything else in the
process finds its own loader. pydantic's loader is private;
tests/unit/test_spec_plugins.py checks that pydantic asks it for nothing but `get_plugins`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import ModuleType

LOADER = "pydantic.plugin._loader"


def _none() -> Iterable[object]:
    return ()


@contextmanager
def without() -> Iterator[None]:
    # pydantic's loader, when a program built a model of its own first: set aside, not kept
    # in place (its plugins would be handed the spec models), and put back afterwards.
    own = sys.modules.get(LOADER)
    stand_in = ModuleType(LOADER, "pydantic's plugin loader while dockyard builds its models")
    stand_in.get_plugins = _none  # type: ignore[attr-defined]
    sys.modules[LOADER] = stand_in
    try:
        yield
    finally:
        if sys.modules.get(LOADER) is stand_in:
            if own is None:
                del sys.modules[LOADER]
            else:
                sys.modules[LOADER] = own
