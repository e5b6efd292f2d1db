"""Value types of the spec, each with one clear message when a value does not fit.

Every string that ends up in a file, a netlink message or an iptables rule is a token with a
precise shape, never free text: a control character anywhere is an error.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    Strict,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from dockyard.spec.wording import shown


def _fail(message: str, **context: Any) -> PydanticCustomError:
    """An error in dockyard's words; values are quoted with `shown`."""
    text = message.format(**{k: shown(v) if k == "value" else v for k, v in context.items()})
    return PydanticCustomError("dockyard", "{text}", {"text": text})


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _text(value: Any, what: str) -> str:
    """`value` as a str without control characters, or the error that says what was wanted."""
    if not isinstance(value, str):
        raise _fail("must be {what}, got {value}", what=what, value=value)
    control = _CONTROL.search(value)
    if control:
        raise _fail(
            "must be {what}; it holds control character U+{code:04X}: {value}",
            what=what,
            code=ord(control.group()),
            value=value,
        )
    return value


# Interface names as the kernel takes them (dev_valid_name): at most IFNAMSIZ - 1 bytes.
IFNAMSIZ = 16


# A bridge's name stands, as text, in every rule's -i/-o that iptables-restore reads; these
# the kernel takes in a name, but iptables does not read as themselves.
IPTABLES_MEANS = {
    "+": "which iptables reads as a wildcard in a rule's -i/-o",
    '"': "which iptables-restore reads as a quote",
    "\\": "which iptables-restore reads as an escape",
}


def _interface_name(value: Any) -> str:
    what = "a Linux interface name: 1 to 15 bytes, no spaces, '/' or ':'"
    if not _is_interface_name(_text(value, what)):
        raise _fail("must be {what}, got {value}", what=what, value=value)
    special = next((c for c in str(value) if c in IPTABLES_MEANS), None)
    if special is not None:
        raise _fail(
            "must not hold {char}, {meaning}, got {value}",
            char=repr(special),
            meaning=IPTABLES_MEANS[special],
            value=value,
        )
    return str(value)


def _is_interface_name(text: str) -> bool:
    return (
        0 < len(text.encode("utf-8", "replace")) < IFNAMSIZ
        and text not in (".", "..")
        and not any(c.isspace() or c in "/:" or _CONTROL.match(c) for c in text)
    )


def _ip_address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    what = "an IPv4 or IPv6 address"
    text = _text(value, what)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise _fail("must be {what}, got {value}", what=what, value=value) from None
    scope = getattr(address, "scope_id", None)
    if scope is not None and not _is_interface_name(scope):  # fe80::1%eth0, nothing else
        raise _fail(
            "must be {what}; its zone must be an interface name, got {value}",
            what=what,
            value=value,
        )
    return address


IPAddress = Annotated[
    ipaddress.IPv4Address | ipaddress.IPv6Address,
    BeforeValidator(_ip_address),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "description": "an IPv4 or IPv6 address"}),
]


def _ipv4_address(value: Any) -> ipaddress.IPv4Address:
    if isinstance(value, ipaddress.IPv4Address):
        return value
    what = "an IPv4 address such as 0.0.0.0"
    try:
        return ipaddress.IPv4Address(_text(value, what))
    except ValueError:
        raise _fail("must be {what}, got {value}", what=what, value=value) from None


IPv4Address = Annotated[
    ipaddress.IPv4Address,
    BeforeValidator(_ipv4_address),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "description": "an IPv4 address"}),
]


def _ipv6_address(value: Any) -> ipaddress.IPv6Address:
    address = _ip_address(value)
    if not isinstance(address, ipaddress.IPv6Address):
        what = "an IPv6 address such as 2001:4860:4860::8888"
        raise _fail("must be {what}, got {value}", what=what, value=value)
    return address


IPv6Address = Annotated[
    ipaddress.IPv6Address,
    BeforeValidator(_ipv6_address),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "description": "an IPv6 address"}),
]


def _keyword_or(keyword: str, inner: Any) -> Any:
    def validate(value: Any) -> Any:
        return keyword if isinstance(value, str) and value == keyword else inner(value)

    return validate


def _auto_or(inner: Any) -> Any:
    return _keyword_or("auto", inner)


PATH_MAX, NAME_MAX = 4096, 255


def _absolute_path(value: Any) -> PurePosixPath:
    if isinstance(value, PurePosixPath):
        value = str(value)
    what = "an absolute path such as /var/lib/docker"
    text = _text(value, what)
    if not text.startswith("/"):
        raise _fail("must be an absolute path (start with /), got {value}", value=value)
    # POSIX leaves a path that starts with exactly two slashes to the system, and
    # PurePosixPath keeps them (`//` != `/`); Linux reads it as one.
    path = PurePosixPath("/" + text.lstrip("/"))
    if ".." in path.parts:
        raise _fail("must not contain '..', got {value}", value=value)
    if len(text.encode()) >= PATH_MAX or any(len(p.encode()) > NAME_MAX for p in path.parts):
        raise _fail(
            "must be a path of at most {path_max} bytes, each name at most {name_max}, got {value}",
            path_max=PATH_MAX - 1,
            name_max=NAME_MAX,
            value=value,
        )
    return path


AbsPath = Annotated[
    PurePosixPath,
    BeforeValidator(_absolute_path),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^/", "description": "an absolute path"}),
]

BridgeName = Annotated[
    str,
    BeforeValidator(_keyword_or("none", _interface_name)),
    WithJsonSchema({"type": "string", "pattern": r'^[^\s/:+"\\]{1,15}$'}),
]


def _host_interface(value: Any) -> ipaddress.IPv4Interface:
    what = "an IPv4 address with a prefix length, such as 172.17.42.1/16"
    if isinstance(value, ipaddress.IPv4Interface):
        value = value.with_prefixlen
    text = _text(value, what)
    try:
        if "/" not in text:
            raise ValueError(text)
        iface = ipaddress.IPv4Interface(text)
    except ValueError:
        raise _fail("must be {what}, got {value}", what=what, value=value) from None
    net = iface.network
    if net.prefixlen < 31 and iface.ip in (net.network_address, net.broadcast_address):
        raise _fail(
            "{address} is the network's own {which} address; give the bridge a host address "
            "such as {example}",
            address=text,
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


def _whole_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _mtu(value: Any) -> int:
    if not _whole_number(value) or not 68 <= value <= 65535:
        raise _fail("must be auto or a number from 68 to 65535, got {value}", value=value)
    return int(value)


Mtu = Annotated[
    Literal["auto"] | int,
    BeforeValidator(_auto_or(_mtu)),
    WithJsonSchema(
        {"oneOf": [{"const": "auto"}, {"type": "integer", "minimum": 68, "maximum": 65535}]}
    ),
]

_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


def _mac(value: Any) -> str:
    what = "a MAC address such as 02:42:ac:11:00:01"
    text = _text(value, what).lower()
    if not _MAC.fullmatch(text):
        raise _fail("must be {what}, got {value}", what=what, value=value)
    if int(text[:2], 16) & 1:
        raise _fail("{mac} is a multicast address; a bridge needs a unicast MAC", mac=text)
    return text


MacAddress = Annotated[
    str,
    BeforeValidator(_mac),
    WithJsonSchema({"type": "string", "pattern": "^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$"}),
]

_KERNEL = re.compile(r"\d{1,5}(\.\d{1,5}){0,2}")


def _kernel_version(value: Any) -> str:
    if isinstance(value, float):
        raise _fail(
            'must be a quoted string such as "3.10": unquoted, YAML reads a number ({value})',
            value=value,
        )
    text = str(value) if _whole_number(value) and 0 <= value < 100000 else value
    if not isinstance(text, str) or not _KERNEL.fullmatch(text) or not text.isascii():
        raise _fail('must be a kernel version such as "3.8" or "4.19.0", got {value}', value=value)
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
IPV4_PATTERN = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"  # Rust regex: $ is the very end
IPv4Text = Annotated[str, StringConstraints(pattern=IPV4_PATTERN)]


def _lowercase(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


Protocol = Annotated[Literal["tcp", "udp"], BeforeValidator(_lowercase)]


def _version(value: Any) -> int:
    if not _whole_number(value) or value != 1:
        raise _fail("this dockyard reads spec version 1 only, got {value}", value=value)
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
    if isinstance(value, str) and value in ARCHES:
        return value
    docker = UNAME_TO_ARCH.get(value) if isinstance(value, str) else None
    hint = f" (Docker calls {value} {docker})" if docker else ""
    raise _fail(
        "must be one of {known}, got {value}{hint}",
        known=", ".join(ARCHES),
        value=value,
        hint=hint,
    )


Arch = Annotated[str, BeforeValidator(_arch), WithJsonSchema({"enum": list(ARCHES)})]
StorageDriver = Literal["aufs", "btrfs", "devicemapper", "overlay2", "overlay", "vfs"]
StorageDriverOrAuto = Literal["auto", "aufs", "btrfs", "devicemapper", "overlay2", "overlay", "vfs"]


def _seconds(value: Any) -> float:
    """A float option that is never NaN, infinite or out of its range."""
    if isinstance(value, float) or (_whole_number(value) and abs(value) < 2**64):
        number = float(value)
        if math.isfinite(number) and 0 < number <= LOCK_TIMEOUT_MAX:
            return number
    raise _fail(
        "must be a number of seconds above 0 and at most {most}, got {value}",
        most=LOCK_TIMEOUT_MAX,
        value=value,
    )


LOCK_TIMEOUT_MAX = 3600
Seconds = Annotated[
    float,
    BeforeValidator(_seconds),
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "maximum": LOCK_TIMEOUT_MAX}),
]

# DNS search domains and options go into <root>/resolv.conf, one line each: RFC 1123 names,
# and the limits the resolver has long had (glibc before 2.26, musl): 6 domains, 256 chars.
SEARCH_DOMAINS_MAX, SEARCH_CHARS_MAX = 6, 256
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*\.?")


NO_SEARCH = "."  # Docker's --dns-search=.: no search line at all, not even the host's


def _search_domain(value: Any) -> str:
    what = "a domain name such as example.com (letters, digits and '-', dot-separated)"
    text = _text(value, what)
    if text == NO_SEARCH:
        return text
    if not _DOMAIN.fullmatch(text) or len(text.rstrip(".")) > 253:
        raise _fail("must be {what}, got {value}", what=what, value=value)
    return text


def _search_limits(domains: list[str]) -> list[str]:
    if NO_SEARCH in domains and len(domains) > 1:
        raise _fail(
            "'.' means no search domain at all (Docker's --dns-search=.) and must be the only entry"
        )
    if len(domains) > SEARCH_DOMAINS_MAX:
        raise _fail(
            "lists {n} domains; resolv.conf takes at most {most}",
            n=len(domains),
            most=SEARCH_DOMAINS_MAX,
        )
    length = len(" ".join(domains))
    if length > SEARCH_CHARS_MAX:
        raise _fail(
            "is {n} characters long; resolv.conf takes at most {most}",
            n=length,
            most=SEARCH_CHARS_MAX,
        )
    return domains


SearchDomain = Annotated[
    str,
    BeforeValidator(_search_domain),
    WithJsonSchema({"type": "string", "format": "hostname"}),
]
SearchList = Annotated[list[SearchDomain], AfterValidator(_search_limits)]

# resolv.conf(5): the options that take no value, and the ranges of those that take one.
RESOLVER_FLAGS = (
    "debug",
    "rotate",
    "no-check-names",
    "inet6",
    "ip6-bytestring",
    "ip6-dotint",
    "no-ip6-dotint",
    "edns0",
    "single-request",
    "single-request-reopen",
    "no-tld-query",
    "use-vc",
    "no-reload",
    "trust-ad",
    "no-aaaa",
)
RESOLVER_VALUES = {"ndots": (0, 15), "timeout": (1, 30), "attempts": (1, 5)}


def _resolver_option(value: Any) -> str:
    what = "an option of resolv.conf(5) such as ndots:2, timeout:5, attempts:2, rotate or edns0"
    text = _text(value, what)
    name, colon, number = text.partition(":")
    if name in RESOLVER_VALUES:
        low, high = RESOLVER_VALUES[name]
        if colon and number.isascii() and number.isdigit() and low <= int(number) <= high:
            return text
        raise _fail(
            "must be {name}:N with N from {low} to {high}, got {value}",
            name=name,
            low=low,
            high=high,
            value=value,
        )
    if text in RESOLVER_FLAGS:
        return text
    guess = difflib.get_close_matches(name, [*RESOLVER_FLAGS, *RESOLVER_VALUES], n=1)
    hint = f" (did you mean {guess[0]}?)" if guess else ""
    raise _fail("must be {what}, got {value}{hint}", what=what, value=value, hint=hint)


ResolverOption = Annotated[
    str,
    BeforeValidator(_resolver_option),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": rf"^({'|'.join(RESOLVER_FLAGS)}|({'|'.join(RESOLVER_VALUES)}):[0-9]+)$",
        }
    ),
]


def _matching(pattern: str, what: str) -> Callable[[Any], str]:
    """A validator: text that `pattern` matches whole."""
    compiled = re.compile(pattern)

    def validate(value: Any) -> str:
        text = _text(value, what)
        if not compiled.fullmatch(text):
            raise _fail("must be {what}, got {value}", what=what, value=value)
        return text

    return validate


STORAGE_OPTION = r"[a-z0-9][a-z0-9._-]*=[\x21-\x7e]+"
StorageOption = Annotated[
    str,
    BeforeValidator(
        _matching(
            STORAGE_OPTION,
            "a storage option key=value such as dm.basesize=20G, with no spaces",
        )
    ),
    WithJsonSchema({"type": "string", "pattern": f"^{STORAGE_OPTION}$"}),
]

# Part of a file name: <root>/init/dockerinit-<version>.
RELEASE = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}"
Release = Annotated[
    str,
    BeforeValidator(
        _matching(
            RELEASE, "a version such as 1.2.0: letters, digits, '.', '_', '+' or '-', at most 64"
        )
    ),
    WithJsonSchema({"type": "string", "pattern": f"^{RELEASE}$"}),
]


# network.ip_forward: true sets net.ipv4.ip_forward to 1 (Docker's default), false leaves it as
# it is (Docker's --ip-forward=false), `disable` sets it to 0. Not `off`: YAML 1.1 (PyYAML,
# Ansible's inventories) reads an unquoted off as false, which here means the opposite.
IP_FORWARD_DISABLE = "disable"


def _ip_forward(value: Any) -> bool | str:
    if isinstance(value, bool) or value == IP_FORWARD_DISABLE:
        return value  # type: ignore[no-any-return]
    raise _fail(
        "must be true (set net.ipv4.ip_forward to 1), false (leave it as it is, as Docker's "
        "--ip-forward=false did) or disable (set it to 0), got {value}",
        value=value,
    )


IpForward = Annotated[
    bool | Literal["disable"],
    BeforeValidator(_ip_forward),
    WithJsonSchema(
        {
            "enum": [True, False, IP_FORWARD_DISABLE],
            "description": "true: set to 1; false: leave as it is; disable: set to 0",
        }
    ),
]
