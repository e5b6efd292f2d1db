"""pydantic's validation errors, in dockyard's words: what was wanted, and what was written."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.spec.types import IPV4_PATTERN, PORT_RANGE
from dockyard.spec.wording import shown

_WANTED = {
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "string_type": "must be text",
    "list_type": "must be a list, such as [a, b]",
    "dict_type": "must be a mapping of keys, such as `key: value`",
    "model_type": "must be a mapping of keys, such as `key: value`",
    "model_attributes_type": "must be a mapping of keys, such as `key: value`",
    "ip_v4_address": "must be an IPv4 address such as 0.0.0.0",
}
_BOUNDS = {
    "greater_than": ("gt", "above"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "below"),
    "less_than_equal": ("le", "at most"),
}


def describe(err: Mapping[str, Any]) -> str:
    """The message for one error (without its location); `missing` and `extra_forbidden` are
    worded by the loader, which knows the fields."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    got = shown(err.get("input"))
    if kind == "dockyard":
        return str(err["msg"])
    if kind == "missing":
        return "is required"
    if ctx.get("pattern") == IPV4_PATTERN:
        return f"must be an IPv4 address such as 172.17.0.2, got {got}"
    if kind in _BOUNDS and (ctx.get("ge"), ctx.get("le")) in (
        (PORT_RANGE[0], None),
        (None, PORT_RANGE[1]),
    ):
        return f"must be a port number from {PORT_RANGE[0]} to {PORT_RANGE[1]}, got {got}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"must be {words} {ctx.get(key)}, got {got}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "")
        return f"must be {expected}, got {got}"
    if kind in ("too_short", "too_long"):
        return _length(kind, ctx, err.get("input"))
    if kind in _WANTED:
        return f"{_WANTED[kind]}, got {got}"
    return f"is not a value dockyard can use here: {got}"


def _length(kind: str, ctx: Mapping[str, Any], value: Any) -> str:
    count = len(value) if isinstance(value, list | tuple | dict) else 0
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        return f"must list at least {least} {'value' if least == 1 else 'values'}, got {count}"
    return f"must list at most {ctx.get('max_length')} values, got {count}"
