"""Talking to the Docker daemon in its language: the `daemon.json` that makes dockerd agree
with a spec, and the spec equivalent to a `daemon.json` or to dockerd's flags.

Pure: the caller supplies what a spec leaves to the host (the MTU of `mtu: auto`, the
nameservers dockyard derives); every setting dockyard does not manage comes back as a note.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from dockyard.errors import DockyardError
from dockyard.spec import Spec

# daemon.json key -> spec path; the values have the same meaning on both sides.
MANAGED: dict[str, tuple[str, ...]] = {
    "bridge": ("network", "bridge", "name"),
    "bip": ("network", "bridge", "address"),
    "mtu": ("network", "bridge", "mtu"),
    "iptables": ("network", "iptables"),
    "ip-forward": ("network", "ip_forward"),
    "ip-masq": ("network", "ip_masq"),
    "icc": ("network", "icc"),
    "ip": ("network", "default_bind_ip"),
    "userland-proxy": ("network", "userland_proxy"),
    "ipv6": ("network", "ipv6"),
    "dns": ("dns", "servers"),
    "dns-search": ("dns", "search"),
    "dns-opts": ("dns", "options"),
    "data-root": ("root",),
    "pidfile": ("pidfile",),
    "storage-driver": ("storage", "driver"),
    "storage-opts": ("storage", "options"),
    "selinux-enabled": ("selinux",),
}
ALIASES = {"graph": "data-root"}  # Docker 1.x's name of the data root
LISTS = {"dns", "dns-search", "dns-opts", "storage-opts", "hosts"}
# dockerd's flags, long and short, and the daemon.json key each one sets.
FLAGS = {
    "--bridge": "bridge",
    "-b": "bridge",
    "--bip": "bip",
    "--mtu": "mtu",
    "--iptables": "iptables",
    "--ip-forward": "ip-forward",
    "--ip-masq": "ip-masq",
    "--icc": "icc",
    "--ip": "ip",
    "--userland-proxy": "userland-proxy",
    "--ipv6": "ipv6",
    "--dns": "dns",
    "--dns-search": "dns-search",
    "--dns-opt": "dns-opts",
    "--data-root": "data-root",
    "--graph": "data-root",
    "-g": "data-root",
    "--pidfile": "pidfile",
    "-p": "pidfile",
    "--storage-driver": "storage-driver",
    "-s": "storage-driver",
    "--storage-opt": "storage-opts",
    "--selinux-enabled": "selinux-enabled",
    # Flags of settings dockyard does not manage whose daemon.json key is not their name.
    "-D": "debug",
    "-H": "hosts",
    "--host": "hosts",
    "-G": "group",
    "-l": "log-level",
}
# dockerd's switches (20.10's `dockerd --help`): no value follows them, managed or not.
BOOLEAN_FLAGS = {
    "iptables",
    "ip-forward",
    "ip-masq",
    "icc",
    "selinux-enabled",
    "userland-proxy",
    "ipv6",
    "cri-containerd",
    "debug",
    "experimental",
    "init",
    "ip6tables",
    "live-restore",
    "no-new-privileges",
    "raw-logs",
    "rootless",
    "tls",
    "tlsverify",
}


def export(spec: Spec, mtu: int, nameservers: list[str]) -> dict[str, Any]:
    """The daemon.json for dockerd beside dockyard: containers on the bridge dockyard made,
    with its MTU and DNS. `mtu` and `nameservers` are what the spec comes to on this host."""
    net = spec.network
    doc: dict[str, Any] = {
        "data-root": str(spec.root),
        "pidfile": str(spec.pidfile),
        "bridge": net.bridge.name,
    }
    if not net.bridge.disabled:
        # dockyard made the bridge and its address: dockerd attaches to it (-b), no --bip.
        doc.update(
            {
                "mtu": mtu,
                "iptables": net.iptables,
                # dockerd's --ip-forward=false leaves the setting alone, as false does here;
                # with `disable` dockyard has turned it off, and dockerd must not turn it on.
                "ip-forward": net.ip_forward is True,
                "ip-masq": net.ip_masq,
                "icc": net.icc,
                "ip": str(net.default_bind_ip),
                "userland-proxy": net.userland_proxy,
            }
        )
    # --ipv6: dockerd keeps the IPv6 nameservers in containers' resolv.conf only with it, as
    # dockyard keeps them in its own with network.ipv6.
    doc["ipv6"] = net.ipv6
    doc["dns"] = list(nameservers)
    if spec.dns.search:
        doc["dns-search"] = list(spec.dns.search)
    if spec.dns.options:
        doc["dns-opts"] = list(spec.dns.options)
    if spec.storage.driver != "auto":
        doc["storage-driver"] = spec.storage.driver
    if spec.storage.options:
        doc["storage-opts"] = list(spec.storage.options)
    if spec.selinux:
        doc["selinux-enabled"] = True
    return doc


def to_spec(daemon: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The spec (as data, `version: 1` first) equivalent to a daemon.json, and a note for
    every setting dockyard does not manage."""
    spec: dict[str, Any] = {"version": 1}
    notes: list[str] = []
    for raw_key, value in daemon.items():
        key = ALIASES.get(raw_key, raw_key)
        path = MANAGED.get(key)
        if path is None:
            notes.append(f"{raw_key}: not managed by dockyard; keep it in daemon.json")
            continue
        if key == "bip":
            notes.append(
                "bip: dockyard gives the bridge this address, and dockerd then attaches to the "
                "bridge (`bridge`), without --bip"
            )
        _put(spec, path, value)
    return spec, notes


def problems(spec: Mapping[str, Any], origin: str) -> list[str]:
    """Why the spec `to_spec` made from `origin` is not valid, each said of the daemon.json
    setting it came from (`ORIGIN: mtu (network.bridge.mtu): must be ...`); [] when valid."""
    import yaml

    from dockyard.errors import SpecError
    from dockyard.spec import load_text

    try:
        load_text(yaml.safe_dump(dict(spec), sort_keys=False), _IMPORTED)
    except SpecError as e:
        return [f"{origin}: {_of_setting(p)}" for p in e.problems]
    return []


_IMPORTED = "<imported>"
_LOCATION = re.compile(rf"{re.escape(_IMPORTED)}(?::\d+:\d+)?: ")


def _of_setting(problem: str) -> str:
    """A problem of the imported spec (`<imported>:4:10: network.bridge.mtu: ...`) as one of
    the daemon.json setting it came from."""
    text = _LOCATION.sub("", problem, count=1)
    for key, path in sorted(MANAGED.items(), key=lambda kv: -len(kv[1])):
        dotted = ".".join(path)
        if text.startswith(f"{dotted}:"):
            return f"{key} ({dotted}){text[len(dotted) :]}"
        if text.startswith((f"{dotted}[", f"{dotted}.")):
            return f"{key}: {text}"
    return text


def _put(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        doc = doc.setdefault(part, {})
    doc[path[-1]] = value


def parse_flags(text: str) -> dict[str, Any]:
    """dockerd's command line (`--bridge docker0 --iptables=false ...`) as daemon.json data.
    Flags dockyard does not know are kept under their own name, as daemon.json would have
    them, so that they come back as notes."""
    out: dict[str, Any] = {}
    try:
        words = shlex.split(text)
    except ValueError as e:  # a quote left open, or a backslash at the very end
        raise DockyardError(f"--from-flags: {str(e).lower()}, as a shell splits it") from None
    i = 0
    while i < len(words):
        word = words[i]
        if i == 0 and word.rsplit("/", 1)[-1] == "dockerd":  # `dockerd`, `/usr/bin/dockerd`
            i += 1
            continue
        if not word.startswith("-"):
            raise DockyardError(f"--from-flags: {word!r} is not a flag")
        name, eq, value = word.partition("=")
        key = FLAGS.get(name, name.lstrip("-"))
        if not eq:
            takes_value = key not in BOOLEAN_FLAGS
            nxt = words[i + 1] if i + 1 < len(words) else None
            if takes_value or (nxt in ("true", "false")):
                if nxt is None:
                    raise DockyardError(f"--from-flags: {name} needs a value")
                value, i = nxt, i + 1
            else:
                value = "true"
        out_value: Any = _typed(key, value)
        if key in LISTS:
            out.setdefault(key, []).append(out_value)
        else:
            out[key] = out_value
        i += 1
    return out


def _typed(key: str, value: str) -> Any:
    if key in BOOLEAN_FLAGS:
        if value not in ("true", "false"):
            raise DockyardError(f"--from-flags: {key} takes true or false, got {value!r}")
        return value == "true"
    if key == "mtu":
        try:
            return int(value)
        except ValueError:
            raise DockyardError(f"--from-flags: mtu takes a number, got {value!r}") from None
    return value
