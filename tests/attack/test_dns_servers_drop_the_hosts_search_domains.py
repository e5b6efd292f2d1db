"""With `dns.servers` given and `dns.search` not, dockyard writes no search line, although the
host's resolv.conf has one: short names that resolved through the host's search domains stop
resolving in containers.

Docker 1.6 (daemon/container.go, setupContainerDns): when any of --dns/--dns-search is given,
`dns = resolvconf.GetNameservers(resolvConf)` and `dnsSearch = resolvconf.GetSearchDomains(
resolvConf)` are read from the host first, and only the ones given replace them; then
`resolvconf.Build(path, dns, dnsSearch)`. So `--dns 1.1.1.1` on a host whose resolv.conf says
`search corp.example` wrote `nameserver 1.1.1.1` and `search corp.example`. Later Docker kept the
same rule (libnetwork's sandbox setupDNS: the host's search domains unless --dns-search is
given). The README lists no deliberate difference for this.
"""

from __future__ import annotations

from dockyard.reconcilers.dns import DnsObserved, derive
from dockyard.spec import load_text

HOST = "nameserver 10.0.0.1\nsearch corp.example\n"


def test_dns_servers_keep_the_hosts_search_domains() -> None:
    spec = load_text("version: 1\ndns: {servers: [1.1.1.1]}\n")
    derived = derive(spec, DnsObserved(host_file="/etc/resolv.conf", host_text=HOST))
    assert derived.nameservers == ("1.1.1.1",)
    assert "search corp.example\n" in derived.content, derived.content
