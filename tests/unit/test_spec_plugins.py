"""The spec models are built without pydantic's plugin look-up (dockyard/spec/plugins.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest

from dockyard.spec import plugins


def names_taken_from_the_loader() -> set[str]:
    """Every name pydantic's own code imports from its plugin loader, wherever it does."""
    package = Path(pydantic.__file__).parent
    names: set[str] = set()
    for source in package.rglob("*.py"):
        module = ".".join(source.relative_to(package.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                assert all(alias.name != plugins.LOADER for alias in node.names), source
            if isinstance(node, ast.ImportFrom):
                base = module.rsplit(".", node.level)[0] if node.level else ""
                target = f"{base}.{node.module}" if node.level and node.module else node.module
                if node.level and not node.module:
                    target = base
                    if any(alias.name == "_loader" for alias in node.names):
                        names.add("the module itself")
                if target == plugins.LOADER:
                    names.update(alias.name for alias in node.names)
    return names


def test_pydantic_asks_its_loader_for_get_plugins_only() -> None:
    """The stand-in offers `get_plugins` alone: a pydantic that wanted more would break."""
    assert names_taken_from_the_loader() == {"get_plugins"}


def test_a_run_imports_neither_the_loader_nor_importlib_metadata() -> None:
    code = (
        "import sys, dockyard.engine, dockyard.spec\n"
        "print(sorted(m for m in ('importlib.metadata', 'pydantic.plugin._loader') "
        "if m in sys.modules))\n"
        "from pydantic.plugin._loader import get_plugins\n"  # the real one, once wanted
        "import pydantic.plugin._loader as loader\n"
        "print(loader.__file__.endswith('_loader.py'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\nTrue\n"


def test_the_stand_in_is_gone_afterwards_even_after_an_error() -> None:
    saved = sys.modules.pop(plugins.LOADER, None)
    try:
        with pytest.raises(RuntimeError), plugins.without():
            assert list(sys.modules[plugins.LOADER].get_plugins()) == []
            raise RuntimeError
        assert plugins.LOADER not in sys.modules
    finally:
        if saved is not None:
            sys.modules[plugins.LOADER] = saved


def test_a_loader_already_imported_is_set_aside_and_put_back() -> None:
    """Its plugins are not handed the spec models (tests/attack has a real plugin)."""
    import pydantic.plugin._loader as real

    with plugins.without():
        assert sys.modules[plugins.LOADER] is not real
        assert list(sys.modules[plugins.LOADER].get_plugins()) == []
    assert sys.modules[plugins.LOADER] is real
