"""`--from-flags` accepts dockerd's command line with a leading `dockerd`, but not with the path
systemd and `ps` show: Debian's docker.service runs `/usr/bin/dockerd -H fd://
--containerd=/run/containerd/containerd.sock`, and pasting that line failed with
"'/usr/bin/dockerd' is not a flag"."""

from __future__ import annotations

from dockyard import daemon_json


def test_the_daemons_own_path_leads_the_line() -> None:
    line = "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock -b docker0"
    assert daemon_json.parse_flags(line) == {
        "hosts": ["fd://"],
        "containerd": "/run/containerd/containerd.sock",
        "bridge": "docker0",
    }
