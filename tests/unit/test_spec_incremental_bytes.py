"""The incremental spec read (dockyard/spec/incremental.py) against bytes that are not UTF-8:
a reviewer found that an edit adding only comment lines between two published ports was taken
from the kept spec without its bytes ever being decoded, so a file the whole read refuses was
accepted (and then kept, so accepted again). It is refused as the whole read refuses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard import background
from dockyard.errors import SpecError
from dockyard.spec import incremental, kept, loader


def large_spec(ports: int = 3400) -> bytes:
    entries = "".join(
        f"    - host_port: {1000 + i}\n"
        f"      container_ip: 172.17.{i // 250}.{2 + i % 250}\n"
        "      container_port: 80\n"
        for i in range(ports)
    )
    text = "version: 1\nnetwork:\n  published_ports:\n" + entries + "  iptables: true\n"
    return text.encode()


@pytest.mark.parametrize(
    "bad_line",
    [b"    # caf\xe9\n", b"# \xff\xfe\n", b"      # \xed\xa0\x80 (a surrogate)\n"],
)
def test_a_comment_that_is_not_utf8_added_between_ports_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad_line: bytes
) -> None:
    monkeypatch.setenv("DOCKYARD_CACHE_DIR", str(tmp_path / "cache"))
    base = large_spec()
    assert len(base) >= kept.FROM
    path = tmp_path / "spec.yaml"
    path.write_bytes(base)
    loader.load(path)
    background.finish()  # the base is kept
    at = base.index(b"    - host_port: 1011\n")
    path.write_bytes(base[:at] + bad_line + base[at:])
    with pytest.raises(SpecError) as whole:
        loader.decoded(path.read_bytes(), path)
    with pytest.raises(SpecError) as got:
        loader.load(path)
    assert got.value.problems == whole.value.problems


def test_derive_refuses_a_comment_only_region_that_is_not_utf8() -> None:
    base = large_spec(40)
    spec = loader.validate(loader.parse(base.decode(), "spec.yaml"))
    items = incremental.items_of(base, spec)
    assert items is not None
    at = base.index(b"    - host_port: 1011\n")
    assert (
        incremental.derive(incremental.Base(base, spec, items), base[:at] + b"# \xff\n" + base[at:])
        is None
    )
