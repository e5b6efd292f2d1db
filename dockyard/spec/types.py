"""Value types of the spec, each with one clear message when a value does not fit."""

from __future__ import annotations

import ipaddress
import re
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    Strict,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError


def _fail(message: str, **context: Any) -> PydanticCustomError:
    text = message.format(**context)
    return PydanticCustomError("dockyard", "{text}", {"text": text})


def _ip_address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    try:
        return ipaddress.ip_address(value if isinstance(value, str) else "")
    except ValueError:
        raise _fail("must be an IPv4 or IPv6 address, got {value!r}", value=value) from None


IPAddress = Annotated[
    ipaddress.IPv4Address | ipaddress.IPv6Address,
    BeforeValidator(_ip_address),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "description": "an IPv4 or IPv6 address"}),
]


def _keyword_or(keyword: str, inner: Any) -> Any:
    def validate(value: Any) -> Any:
        return keyword if value == keyword else inner(value)

    return validate


def _auto_or(inner: Any) -> Any:
    return _keyword_or("auto", inner)


def _absolute_path(value: Any) -> PurePosixPath:
    if isinstance(value, PurePosixPath):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise _fail("must be an absolute path such as /var/lib/docker")
    if not value.startswith("/"):
        raise _fail("must be an absolute path (start with /), got {value!r}", value=value)
    path = PurePosixPath(value)
    if ".." in path.parts:
        raise _fail("must not contain '..', got {value!r}", value=value)
    if "\0" in value:
        raise _fail("must not contain a NUL byte")
    return path


AbsPath = Annotated[
    PurePosixPath,
    BeforeValidator(_absolute_path),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^/", "description": "an absolute path"}),
]

_IFNAME = re.compile(r"^[^\s/:]{1,15}$")


def _interface_name(value: Any) -> str:
    if not isinstance(value, str) or not _IFNAME.match(value) or value in (".", ".."):
        raise _fail(
            "must be a Linux interface name: 1 to 15 characters, no spaces, '/' or ':', "
            "got {value!r}",
            value=value,
        )
    return value


BridgeName = Annotated[
    str,
    BeforeValidator(_keyword_or("none", _interface_name)),
    WithJsonSchema({"type": "string", "pattern": r"^[^\s/:]{1,15}$"}),
]


def _host_interface(value: Any) -> ipaddress.IPv4Interface:
    example = "an IPv4 address with a prefix length, such as 172.17.42.1/16"
    if isinstance(value, ipaddress.IPv4Interface):
        value = value.with_prefixlen
    if not isinstance(value, str) or "/" not in value:
        raise _fail("must be " + example + ", got {value!r}", value=value)
    try:
        iface = ipaddress.IPv4Interface(value)
    except ValueError:
        raise _fail("must be " + example + ", got {value!r}", value=value) from None
    net = iface.network
    if net.prefixlen < 31 and iface.ip in (net.network_address, net.broadcast_address):
        raise _fail(
            "{value} is the network's own {which} address; give the bridge a host address "
            "such as {example}",
            value=value,
            which="network" if iface.ip == net.network_address else "broadcast",
            example=f"{net.network_address + 1}/{net.prefixlen}",
        )
    return iface


HostInterface = Annotated[
    ipaddress.IPv4Interface,
    BeforeValidator(_host_interface),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "description": "IPv4 address/prefix, e.g. 172.17.42.1/16"}),
]


BridgeAddress = Annotated[
    Literal["auto"] | ipaddress.IPv4Interface,
    BeforeValidator(_auto_or(_host_interface)),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {"type": "string", "description": "auto, or IPv4 address/prefix, e.g. 172.17.42.1/16"}
    ),
]


def _mtu(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 68 <= value <= 65535:
        raise _fail("must be auto or a number from 68 to 65535, got {value!r}", value=value)
    return value


Mtu = Annotated[
    Literal["auto"] | int,
    BeforeValidator(_auto_or(_mtu)),
    WithJsonSchema(
        {"oneOf": [{"const": "auto"}, {"type": "integer", "minimum": 68, "maximum": 65535}]}
    ),
]

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def _mac(value: Any) -> str:
    text = value.lower() if isinstance(value, str) else ""
    if not _MAC.match(text):
        raise _fail("must be a MAC address such as 02:42:ac:11:00:01, got {value!r}", value=value)
    if int(text[:2], 16) & 1:
        raise _fail("{value} is a multicast address; a bridge needs a unicast MAC", value=value)
    return text


MacAddress = Annotated[
    str,
    BeforeValidator(_mac),
    WithJsonSchema({"type": "string", "pattern": "^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$"}),
]

_KERNEL = re.compile(r"^\d+(\.\d+){0,2}$")


def _kernel_version(value: Any) -> str:
    if isinstance(value, float):
        raise _fail(
            'must be a quoted string such as "3.10": unquoted, YAML reads a number ({value})',
            value=value,
        )
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _KERNEL.match(text):
        raise _fail(
            'must be a kernel version such as "3.8" or "4.19.0", got {value!r}', value=value
        )
    return text


KernelVersion = Annotated[
    str,
    BeforeValidator(_kernel_version),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d+){0,2}$"}),
]


# Published ports come by the hundred thousand: these two are checked by pydantic-core's own
# (Rust) constraints, not by Python callbacks, and the loader words their errors.
PORT_RANGE = (1, 65535)
Port = Annotated[int, Strict(), Field(ge=PORT_RANGE[0], le=PORT_RANGE[1])]

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_PATTERN = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"
IPv4Text = Annotated[str, StringConstraints(pattern=IPV4_PATTERN)]


def _lowercase(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


Protocol = Annotated[Literal["tcp", "udp"], BeforeValidator(_lowercase)]


def _version(value: Any) -> int:
    if value != 1 or isinstance(value, bool):
        raise _fail("this dockyard reads spec version 1 only, got {value!r}", value=value)
    return 1


SpecVersion = Annotated[
    Literal[1], BeforeValidator(_version), WithJsonSchema({"const": 1, "type": "integer"})
]

ARCHES = ("amd64", "386", "arm", "arm64", "ppc64le", "s390x", "riscv64")
# What uname says, in Docker's (Go's) words.
UNAME_TO_ARCH = {
    "x86_64": "amd64",
    "i386": "386",
    "i686": "386",
    "aarch64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def _arch(value: Any) -> str:
    if value in ARCHES:
        return str(value)
    hint = f" (Docker calls {value} {UNAME_TO_ARCH[value]})" if value in UNAME_TO_ARCH else ""
    raise _fail(
        "must be one of {known}, got {value!r}{hint}",
        known=", ".join(ARCHES),
        value=value,
        hint=hint,
    )


Arch = Annotated[str, BeforeValidator(_arch), WithJsonSchema({"enum": list(ARCHES)})]
StorageDriver = Literal["aufs", "btrfs", "devicemapper", "overlay2", "overlay", "vfs"]
StorageDriverOrAuto = Literal["auto", "aufs", "btrfs", "devicemapper", "overlay2", "overlay", "vfs"]
