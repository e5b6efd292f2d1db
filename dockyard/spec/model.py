"""The spec: what a container host should look like. Every default is Docker 1.x's."""

from __future__ import annotations

import ipaddress
from pathlib import PurePosixPath
from typing import Annotated, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from dockyard.spec.types import (
    AbsPath,
    Arch,
    BridgeAddress,
    BridgeName,
    HostInterface,
    IPAddress,
    IpForward,
    IPv4Address,
    IPv4Text,
    IPv6Address,
    KernelVersion,
    MacAddress,
    Mtu,
    Port,
    Protocol,
    Release,
    ResolverOption,
    SearchList,
    Seconds,
    SpecVersion,
    StorageDriver,
    StorageDriverOrAuto,
    StorageOption,
)

DOCKER_ADDRESS_POOLS = (
    "172.17.42.1/16",
    "10.0.42.1/16",
    "10.1.42.1/16",
    "10.42.42.1/16",
    "172.16.42.1/24",
    "172.16.43.1/24",
    "172.16.44.1/24",
    "10.0.42.1/24",
    "10.0.43.1/24",
    "192.168.42.1/24",
    "192.168.43.1/24",
    "192.168.44.1/24",
)
# Docker 1.6's graphdriver priority (daemon/graphdriver/driver.go), the release dockyard follows.
DEFAULT_PRIORITY: tuple[StorageDriver, ...] = ("aufs", "btrfs", "devicemapper", "overlay", "vfs")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Preflight(Section):
    os: Literal["linux"] = "linux"
    require_root: bool = True
    min_kernel: KernelVersion = "3.8"
    arch: list[Arch] = Field(default_factory=lambda: ["amd64"], min_length=1)


class Bridge(Section):
    name: BridgeName = Field(
        "docker0", description='"none" disables networking: no bridge, no iptables, no ip_forward'
    )
    existing: bool = Field(False, description="adopt a bridge managed elsewhere (Docker -b)")
    address: BridgeAddress = Field("auto", description="CIDR (Docker --bip), or auto")
    address_pools: list[HostInterface] = Field(
        default_factory=lambda: [ipaddress.IPv4Interface(a) for a in DOCKER_ADDRESS_POOLS],
        min_length=1,
        description="candidates for address: auto, first free one wins",
    )
    mtu: Mtu = Field("auto", description="auto: MTU of the default-route interface, else 1500")
    mac: MacAddress | None = Field(None, description="null: derived from the bridge name")

    @property
    def disabled(self) -> bool:
        return self.name == "none"


DEFAULT_PROTO = "tcp"
ANY_ADDRESS = "0.0.0.0"


# A TypedDict, not a model: a spec may hold 100,000 of them, and pydantic checks dicts in less
# than half the time it takes to build models. Readers apply the defaults of absent keys.
class PublishedPort(TypedDict):
    """A container port published on the host (Docker -p)."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    proto: NotRequired[Annotated[Protocol, Field(json_schema_extra={"default": DEFAULT_PROTO})]]
    host_ip: NotRequired[Annotated[IPv4Text, Field(json_schema_extra={"default": ANY_ADDRESS})]]
    host_port: Port
    container_ip: IPv4Text
    container_port: Port


class Network(Section):
    bridge: Bridge = Bridge()
    iptables: bool = True
    iptables_backend: Literal["auto", "legacy", "nft"] = Field(
        "auto", description="auto: the one holding rules, else the one `iptables` uses"
    )
    iptables_lock_timeout: Seconds = Field(10.0, description="seconds to wait for the xtables lock")
    icc: bool = True
    ip_masq: bool = True
    ip_forward: IpForward = Field(
        True, description="true: set net.ipv4.ip_forward to 1; false: leave it; disable: set 0"
    )
    ipv6: bool = Field(False, description="IPv6 on the bridge: containers may use IPv6 DNS")
    default_bind_ip: IPv4Address = ipaddress.IPv4Address("0.0.0.0")
    userland_proxy: bool = Field(
        True,
        description="Docker 1.7's flag. dockyard runs no proxy; false: the kernel's hairpin NAT "
        "reaches published ports from this host's 127.0.0.1 and from their own container",
    )
    published_ports: list[PublishedPort] = Field(default_factory=list)


class Dns(Section):
    servers: list[IPAddress] = Field(
        default_factory=list, description="empty: derive from the host's resolv.conf"
    )
    search: SearchList = Field(
        default_factory=list, description="at most 6 domains, 256 characters in all"
    )
    options: list[ResolverOption] = Field(default_factory=list)
    fallback: list[IPAddress] = Field(
        default_factory=lambda: [ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("8.8.4.4")]
    )
    fallback_ipv6: list[IPv6Address] = Field(
        default_factory=lambda: [
            ipaddress.IPv6Address("2001:4860:4860::8888"),
            ipaddress.IPv6Address("2001:4860:4860::8844"),
        ],
        description="added to fallback when network.ipv6 is true (Docker 1.5+)",
    )
    host_resolv_conf: AbsPath = PurePosixPath("/etc/resolv.conf")
    resolved_conf: AbsPath = Field(
        PurePosixPath("/run/systemd/resolve/resolv.conf"),
        description="read instead when the host's only nameserver is systemd-resolved's stub",
    )
    force: bool = Field(
        False, description="rewrite <root>/resolv.conf even when it was edited by hand"
    )


class Storage(Section):
    driver: StorageDriverOrAuto = Field(
        "auto", description="DOCKER_DRIVER in the environment wins over this"
    )
    priority: list[StorageDriver] = Field(
        default_factory=lambda: list(DEFAULT_PRIORITY),
        min_length=1,
    )
    options: list[StorageOption] = Field(default_factory=list)
    migrate: bool = Field(True, description="move a legacy <root>/graph into the driver's layout")


class Exec(Section):
    driver: Literal["native", "lxc"] = "native"
    init_path: AbsPath | None = Field(
        None, description="a dockerinit binary to install as <root>/init/dockerinit-<version>"
    )
    version: Release = "1.2.0"


class Spec(Section):
    """A container host, as Docker 1.x's daemon would prepare it."""

    model_config = ConfigDict(
        title="dockyard spec", json_schema_extra={"additionalProperties": False}
    )

    version: SpecVersion
    root: AbsPath = Field(
        PurePosixPath("/var/lib/docker"),
        description="working root; its real path is used if it is a symlink",
    )
    pidfile: AbsPath = Field(
        PurePosixPath("/var/run/docker.pid"),
        description="Docker's pid file: observed only (a stale one removed, a live holder noted)",
    )
    state_dir: AbsPath = Field(
        PurePosixPath("/var/lib/dockyard"),
        description="dockyard's own lock and ledger of what it owns",
    )
    selinux: bool = False
    preflight: Preflight = Preflight()
    network: Network = Network()
    dns: Dns = Dns()
    storage: Storage = Storage()
    exec: Exec = Exec()
