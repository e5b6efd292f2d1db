"""`storage.options` as Docker 1.6 read its `--storage-opt`s: each is `key=value`, and only the
devicemapper driver reads any (its `NewDeviceSet`); aufs, btrfs, overlay and vfs took them and
ignored them. dockyard refuses what would be ignored instead, and checks each value as
devicemapper parsed it, with Docker's own words for a bad one.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator

SIZE = re.compile(r"(\d+)([kKmMgGtTpP])?[bB]?")  # pkg/units RAMInBytes: binary multiples
UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
INT64_MAX = (1 << 63) - 1
# Go's strconv.ParseBool.
TRUE = ("1", "t", "T", "TRUE", "true", "True")
FALSE = ("0", "f", "F", "FALSE", "false", "False")

# devicemapper's keys in Docker 1.6, and how each value was read.
DM_SIZES = ("dm.basesize", "dm.loopdatasize", "dm.loopmetadatasize", "dm.blocksize")
DM_KEYS = (
    "dm.basesize",
    "dm.loopdatasize",
    "dm.loopmetadatasize",
    "dm.fs",
    "dm.mkfsarg",
    "dm.mountopt",
    "dm.datadev",
    "dm.metadatadev",
    "dm.thinpooldev",
    "dm.blkdiscard",
    "dm.blocksize",
)
REPEATABLE = ("dm.mkfsarg", "dm.mountopt")  # each one adds; for the others the last one won
TAKES_OPTIONS = "devicemapper"

Problem = tuple[int, str]  # (index in storage.options, message)


def split(option: str) -> tuple[str, str]:
    """parsers.ParseKeyValueOpt, then strings.ToLower on the key, as NewDeviceSet did."""
    key, _, value = option.partition("=")
    return key.strip().lower(), value.strip()


def ram_in_bytes(value: str) -> int:
    """pkg/units.RAMInBytes; ValueError with Docker's message."""
    found = SIZE.fullmatch(value)
    if not found:
        raise ValueError(f"invalid size: '{value}'")
    size = int(found.group(1)) * UNITS.get((found.group(2) or "").lower(), 1)
    if size > INT64_MAX:
        raise ValueError(f"invalid size: '{value}' is more than Go's int64 holds")
    return size


def _value_problem(key: str, value: str) -> str | None:
    if key in DM_SIZES:
        try:
            ram_in_bytes(value)
        except ValueError as e:
            return str(e)
    elif key == "dm.fs" and value not in ("ext4", "xfs"):
        return f"Unsupported filesystem {value} (ext4 or xfs)"
    elif key == "dm.blkdiscard" and value not in TRUE + FALSE:
        return f'strconv.ParseBool: parsing "{value}": invalid syntax (true or false)'
    return None


def problems(options: list[str]) -> Iterator[Problem]:
    """What Docker 1.6's devicemapper refused, or would have ignored (a key given twice where
    only the last one counted). Independent of the driver in use."""
    last: dict[str, int] = {}
    for i, option in enumerate(options):
        key, value = split(option)
        if key not in DM_KEYS:
            guess = difflib.get_close_matches(key, DM_KEYS, n=1)
            hint = f" (did you mean {guess[0]}?)" if guess else ""
            yield (
                i,
                (
                    f"Unknown option {key}{hint}: of Docker 1.6's drivers only devicemapper takes "
                    f"options, and it knows {', '.join(DM_KEYS)}"
                ),
            )
            continue
        why = _value_problem(key, value)
        if why:
            yield i, f"{option}: {why}"
        if key in last and key not in REPEATABLE:
            yield (
                i,
                (
                    f"{key} is given twice, in storage.options[{last[key]}] too; Docker used the "
                    "last one and ignored the other"
                ),
            )
        last[key] = i


def for_driver(driver: str, options: list[str]) -> str | None:
    """Why `options` cannot go to `driver`, or None."""
    if not options or driver == TAKES_OPTIONS:
        return None
    return (
        f"storage.options ({', '.join(options)}) are devicemapper's, and the driver is "
        f"{driver}, which takes none (Docker 1.6's {driver} ignored them); remove them or "
        "choose devicemapper"
    )


def parsed(options: list[str]) -> dict[str, str | int | bool | list[str]]:
    """The options as devicemapper held them (sizes in bytes), for `reconcile show`."""
    out: dict[str, str | int | bool | list[str]] = {}
    for option in options:
        key, value = split(option)
        if key in REPEATABLE:
            held = out.setdefault(key, [])
            assert isinstance(held, list)
            held.append(value)
        elif key in DM_SIZES:
            out[key] = ram_in_bytes(value)
        elif key == "dm.blkdiscard":
            out[key] = value in TRUE
        elif key == "dm.thinpooldev":
            out[key] = value.removeprefix("/dev/mapper/")
        else:
            out[key] = value
    return out
