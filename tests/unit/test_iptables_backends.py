"""iptables backends: which one the plain `iptables` runs, and the stamp of dockyard's commits."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dockyard.errors import DockyardError
from dockyard.reconcilers.iptables import backends

# A stand-in that records being run, and claims the backend named by VERSION.
SCRIPT = """#!/bin/sh
echo ran >> "{log}"
echo "iptables v1.8.9 ({version})"
"""


def bin_dir(tmp_path: Path, target: str, version: str) -> tuple[Path, Path]:
    (tmp_path / "bin").mkdir()
    log = tmp_path / "ran.log"
    real = tmp_path / "bin" / target
    real.write_text(SCRIPT.format(log=log, version=version))
    real.chmod(0o755)
    # as Debian's alternatives do: iptables -> iptables-nft -> the multi-call binary
    (tmp_path / "bin" / "iptables-x").symlink_to(real)
    (tmp_path / "bin" / "iptables").symlink_to(tmp_path / "bin" / "iptables-x")
    return tmp_path / "bin", log


@pytest.mark.parametrize(
    ("target", "wanted"), [("xtables-nft-multi", "nft"), ("xtables-legacy-multi", "legacy")]
)
def test_the_multi_call_binary_names_the_backend_without_running_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, wanted: str
) -> None:
    path, log = bin_dir(tmp_path, target, "something else")
    monkeypatch.setenv("PATH", str(path))
    assert backends.linked_backend() == wanted
    assert not log.exists()


@pytest.mark.parametrize(
    ("version", "wanted"), [("nf_tables", "nft"), ("legacy", "legacy"), ("who knows", None)]
)
def test_any_other_binary_is_asked_for_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str, wanted: str | None
) -> None:
    path, log = bin_dir(tmp_path, "iptables-custom", version)
    monkeypatch.setenv("PATH", str(path))
    assert backends.linked_backend() == wanted
    assert log.read_text() == "ran\n"


def test_no_iptables_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert backends.linked_backend() is None


def test_the_commit_stamp_is_set_again_when_the_commit_has_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read begun while dockyard committed may have seen the tables before the commit: the
    stamp is written once more after it, so that such a read is taken for stale."""
    during: list[int] = []

    def run_all(*args: object) -> tuple[list[str], list[backends.CommitFailed]]:
        during.append(time.monotonic_ns())
        return ["filter"], []

    monkeypatch.setattr(backends.Restore, "_run_all", run_all)
    writer = backends.Restore(
        "legacy", tmp_path / "xtables.lock", 1.0, written=tmp_path / "iptables.written"
    )
    assert writer.commit_all([("filter", [])]) == (["filter"], [])
    assert writer.written is not None
    assert not backends._untouched_since(writer.written, time.time(), during[0])
    assert backends._untouched_since(writer.written, 0.0, time.monotonic_ns())


# Answers in turn: "incompatible" (rc 1) while the count is below FAILS, then the chain.
FLICKER = """#!/bin/sh
n=$(cat "{count}" 2>/dev/null || echo 0)
echo $((n + 1)) > "{count}"
if [ "$n" -lt {fails} ]; then
    echo "iptables v1.8.9 (nf_tables): chain \\`$4' in table \\`$2'" \\
        "is incompatible, use 'nft' tool." >&2
    exit 1
fi
echo "-N $4"
"""


def flickering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: int) -> Path:
    count = tmp_path / "count"
    script = tmp_path / "iptables-nft"
    script.write_text(FLICKER.format(count=count, fails=fails))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setattr(backends, "CHAIN_AGAIN", (0.0, 0.0, 0.0, 0.0))
    monkeypatch.setattr(backends, "_nft_chain_exists", lambda table, chain: True)
    return count


def test_a_chain_called_incompatible_while_it_exists_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dockerd restarting deletes and makes its chains again: between iptables-nft's read and
    the check that the chain exists, it came back. A moment later it reads as it is."""
    count = flickering(tmp_path, monkeypatch, fails=2)
    assert backends.list_chain("nft", "filter", "DOCKER-ISOLATION-STAGE-2") == (
        "-N DOCKER-ISOLATION-STAGE-2\n"
    )
    assert count.read_text() == "3\n"


def test_a_chain_that_stays_incompatible_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = flickering(tmp_path, monkeypatch, fails=99)
    with pytest.raises(DockyardError, match="is incompatible, use 'nft' tool"):
        backends.list_chain("nft", "filter", "MADE-BY-NFT")
    assert count.read_text() == f"{len(backends.CHAIN_AGAIN) + 1}\n"


def test_an_incompatible_chain_that_does_not_exist_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = flickering(tmp_path, monkeypatch, fails=99)
    monkeypatch.setattr(backends, "_nft_chain_exists", lambda table, chain: False)
    assert backends.list_chain("nft", "filter", "GONE") is None
    assert count.read_text() == "1\n"


# A stand-in restore that, like iptables-legacy-restore, holds its xtables lock while it runs,
# and gives up at once when another holds it.
HOLDS_ITS_LOCK = """#!/bin/sh
exec 9>"$XTABLES_LOCKFILE"
flock -n 9 || {{ echo "Another app is currently holding the xtables lock." >&2; exit 4; }}
cat > /dev/null
echo "$XTABLES_LOCKFILE" >> "{log}"
sleep 0.3
"""


def test_legacy_tables_commit_side_by_side_each_under_a_lock_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dockyard holds the real lock; the tools it runs each take a private one. Shared, the
    second table's commit would wait for the first (or, here, fail at once)."""
    log = tmp_path / "locks.log"
    script = tmp_path / "iptables-legacy-restore"
    script.write_text(HOLDS_ITS_LOCK.format(log=log))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    writer = backends.Restore("legacy", tmp_path / "xtables.lock", 1.0)
    assert writer.commit_all([("nat", ["-N A"]), ("filter", ["-N B"])]) == (["nat", "filter"], [])
    locks = log.read_text().split()
    assert len(locks) == 2 and len(set(locks)) == 2


# A stand-in restore: filter's ends after a moment; nat's runs until the file `go` appears.
WAITS_FOR_GO = """#!/bin/sh
read table
if [ "$table" = "*nat" ]; then
    while [ ! -e "{go}" ]; do sleep 0.01; done
else
    sleep 0.2
fi
cat > /dev/null
echo "$table" >> "{log}"
"""


def test_the_work_held_for_a_wait_starts_once_one_commit_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While nat's and filter's commits both run they have the two cores; the work held for
    a wait (the kept spec's write) starts when filter's has ended, and nat's still runs."""
    from dockyard import background

    log, go = tmp_path / "done.log", tmp_path / "go"
    script = tmp_path / "iptables-legacy-restore"
    script.write_text(WAITS_FOR_GO.format(go=go, log=log))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    seen: list[str] = []

    def work() -> None:
        seen.append(log.read_text() if log.exists() else "")
        go.touch()

    background.later(work, "kept-spec")
    writer = backends.Restore("legacy", tmp_path / "xtables.lock", 5.0)
    try:
        assert writer.commit_all([("nat", ["-N A"]), ("filter", ["-N B"])]) == (
            ["nat", "filter"],
            [],
        )
    finally:
        go.touch()
        background.finish()
    assert seen == ["*filter\n"]  # filter's commit had ended, nat's had not
    assert log.read_text() == "*filter\n*nat\n"
