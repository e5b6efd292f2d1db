"""HOW to get there: one reconciler per bootstrap concern."""

from __future__ import annotations

from dockyard.reconcilers.base import Reconciler, Seen


def default_set(force_dns: bool = False, force_down: bool = False) -> list[Reconciler]:
    """Every reconciler, as a run uses them. `force_dns`: rewrite a resolv.conf edited by
    hand; `force_down`: `down` removes the bridge even while containers use it."""
    from dockyard.reconcilers.bridge import Bridge
    from dockyard.reconcilers.bridge_netfilter import BridgeNetfilter
    from dockyard.reconcilers.containers import Containers
    from dockyard.reconcilers.directories import Directories
    from dockyard.reconcilers.dns import Dns
    from dockyard.reconcilers.exec_init import ExecInit
    from dockyard.reconcilers.graphdb import GraphDb
    from dockyard.reconcilers.hairpin import Hairpin
    from dockyard.reconcilers.ip_forward import IpForward
    from dockyard.reconcilers.iptables import Iptables
    from dockyard.reconcilers.migration import Migration
    from dockyard.reconcilers.pidfile import PidFile
    from dockyard.reconcilers.preflight import Preflight
    from dockyard.reconcilers.storage import Storage
    from dockyard.reconcilers.sysinfo import Sysinfo
    from dockyard.reconcilers.tagstore import TagStore

    return [
        Preflight(),
        Directories(),
        PidFile(),
        Bridge(force=force_down),
        Iptables(),
        BridgeNetfilter(),
        Hairpin(),
        IpForward(),
        Dns(force=force_dns),
        Sysinfo(),
        Storage(),
        Migration(),
        TagStore(),
        Containers(),
        GraphDb(),
        ExecInit(),
    ]


__all__ = ["Reconciler", "Seen", "default_set"]
