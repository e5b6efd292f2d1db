"""A watch holds on for days: after a pass that read the whole firewall, the heap it left free
goes back to the system (glibc keeps it for the process otherwise)."""

from __future__ import annotations

import subprocess
import sys

PASS_LIKE = """
from dockyard.watch import give_back_memory

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])

def a_full_read():  # what reading 300,000 rules allocates, then drops
    text = b"\\n".join(b"-A DOCKYARD -d 172.17.0.%d -p tcp --dport %d -j DNAT" % (i % 250, i)
                      for i in range(300_000))
    return len(set(text.split(b"\\n")))

before = rss()
a_full_read()
after = rss()
give_back_memory()
print(before, after, rss())
"""


def test_a_pass_gives_back_what_it_no_longer_holds() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PASS_LIKE], capture_output=True, text=True, check=True
    ).stdout
    before, after, trimmed = map(int, out.split())
    assert after - before > 10_000  # the read grew the process by more than 10 MB
    assert trimmed - before < (after - before) / 2, (before, after, trimmed)
