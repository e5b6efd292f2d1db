"""Prints whether dockyard's own netlink reader sees what pyroute2 sees, in this namespace."""

import json

from pyroute2 import IPRoute

from dockyard.state import netlink

with IPRoute() as ipr:
    theirs_addr = sorted(
        (a["index"], a.get("address"), a["prefixlen"]) for a in ipr.get_addr(family=2)
    )
    theirs_links = sorted(
        (x["index"], x.get("ifname"), x.get("mtu"), x.get("address"), bool(x["flags"] & 1))
        for x in ipr.get_links()
    )
    theirs_routes = sorted(
        (str(r.get("dst") or "0.0.0.0"), r["dst_len"], r.get("gateway"), r.get("oif"), r["table"])
        for r in ipr.get_routes(family=2)
    )
ours_addr = sorted(
    (a.index, str(a.interface.ip), a.interface.network.prefixlen) for a in netlink.addresses()
)
ours_links = sorted((x.index, x.name, x.mtu, x.mac, x.up) for x in netlink.links())
ours_routes = sorted(
    (str(r.dst.network_address), r.dst.prefixlen, r.gateway, r.oif, r.table)
    for r in netlink.routes()
)
print(
    json.dumps([theirs_addr == ours_addr, theirs_links == ours_links, theirs_routes == ours_routes])
)
