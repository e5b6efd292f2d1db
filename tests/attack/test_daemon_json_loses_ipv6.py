"""`network.ipv6` is Docker's `--ipv6` (README: "containers may use IPv6 nameservers", i.e.
Docker's `FilterResolvDns(resolvConf, daemon.config.EnableIPv6)`), yet the daemon.json
dockyard exports for dockerd leaves it out, and a daemon.json with `"ipv6": true` is imported as
"not managed by dockyard".

Consequences: with `network.ipv6: true` and a host whose only nameservers are IPv6, the export
hands dockerd `"dns": ["2001:..."]` without `"ipv6": true`, so the daemon runs containers without
IPv6 and gives them nameservers they cannot reach; importing a daemon.json with `"ipv6": true`
gives a spec with `ipv6: false`, whose container resolv.conf drops the IPv6 nameservers Docker
kept (moby v1.6 pkg/networkfs/resolvconf FilterResolvDns with ipv6Enabled=true keeps them;
TestFilterResolvDns's IPv6 rows).
"""

from __future__ import annotations

from dockyard import daemon_json
from dockyard.spec import load_text


def test_export_carries_ipv6() -> None:
    spec = load_text("version: 1\nnetwork: {ipv6: true}\n")
    doc = daemon_json.export(spec, 1500, ["2001:4860:4860::8888"])
    assert doc.get("ipv6") is True, doc


def test_import_maps_ipv6_to_the_spec() -> None:
    spec, notes = daemon_json.to_spec({"ipv6": True})
    assert spec.get("network", {}).get("ipv6") is True, notes
