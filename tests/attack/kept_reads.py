"""What the attacks on the kept read of nf_tables (dockyard/state/tables_kept.py) share."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.integration.test_iptables import Firewall, mappings


def padded(fw: Firewall, tmp_path: Path, *foreign: str) -> None:
    """One published port converged; a foreign chain that makes a save larger than
    tables_kept.FROM; and the foreign rule `foreign` in nat DOCKYARD."""
    fw.spec({"published_ports": mappings(1, host=8080, container=80)})
    fw.converge()
    padding = tmp_path / "padding"
    lines = ["*nat", ":PADDING - [0:0]"]
    lines += [
        f"-A PADDING -s 10.{i // 250}.{i % 250}.1/32 -m comment --comment {'p' * 150} -j RETURN"
        for i in range(6000)
    ]
    padding.write_text("\n".join([*lines, "COMMIT", ""]))
    result = fw.box.run(["sh", "-c", f"iptables-nft-restore --noflush < {padding}"])
    assert result.returncode == 0, result.stderr
    fw.iptables("-t", "nat", "-A", "DOCKYARD", *foreign)


def run_seeing(
    fw: Firewall, target: str, replacement: Path, *args: str, **env: str
) -> tuple[int, str]:
    """`reconcile ARGS` in a private mount namespace where `target` is `replacement`."""
    argv = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        f'mount --bind "$0" {target} && exec "$@"',
        str(replacement),
        *fw.box._reconcile(args),
    ]
    result = fw.box.run(argv, env=env)
    return result.returncode, result.stdout + result.stderr


def owned_filter(fw: Firewall) -> subprocess.Popen[str]:
    """An `ip filter` table owned by an interactive `nft` (`flags owner`), holding a rule that
    iptables-nft cannot show; returned once iptables-nft-save says so."""
    fw.box.run(["nft", "delete", "table", "ip", "filter"], check=True)
    owner = subprocess.Popen(
        ["ip", "netns", "exec", fw.box.ns, "nft", "-i"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert owner.stdin is not None
    owner.stdin.write(
        "add table ip filter { flags owner; }\n"
        "add chain ip filter FORWARD { type filter hook forward priority 0; }\n"
        'add rule ip filter FORWARD oifname "eth9" log\n'
    )
    owner.stdin.flush()
    for _ in range(50):
        if "incompatible" in fw.box.run(["iptables-nft-save", "-t", "filter"]).stdout:
            break
        time.sleep(0.1)
    return owner
