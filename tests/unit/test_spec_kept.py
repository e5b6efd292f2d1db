"""A large validated spec kept by the hash of its bytes (dockyard/spec/kept.py): used only when
it is exactly what validating those bytes with this code gave, and only from files nobody else
could have written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard import background
from dockyard.errors import SpecError
from dockyard.spec import kept, loader
from dockyard.state import cachedir

PORTS = 4000  # about 400 KB of YAML: above kept.FROM


def big_spec(ports: int = PORTS, first_port: int = 1) -> str:
    published = [
        {
            "host_port": first_port + i,
            "container_ip": f"172.17.{i // 250}.{i % 250 + 2}",
            "container_port": 80,
        }
        for i in range(ports)
    ]
    return yaml.safe_dump({"version": 1, "network": {"published_ports": published}})


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "cache"
    monkeypatch.setenv("DOCKYARD_CACHE_DIR", str(where))
    return where


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(big_spec())
    assert path.stat().st_size >= kept.FROM
    return path


def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the YAML parses from here on."""
    calls: list[str] = []
    real = loader.parse

    def counted(text: str, source: str) -> Any:
        calls.append(source)
        return real(text, source)

    monkeypatch.setattr(loader, "parse", counted)
    return calls


def load(path: Path) -> Any:
    spec = loader.load(path)
    background.finish()
    return spec


def files(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.spec")) if cache.exists() else []


def test_the_same_bytes_are_read_once(
    cache: Path, spec_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = parses(monkeypatch)
    first = load(spec_file)
    second = load(spec_file)
    assert calls == [str(spec_file)]
    assert second == first
    assert len(second.network.published_ports) == PORTS
    (made,) = files(cache)
    assert (cache.stat().st_mode & 0o777, made.stat().st_mode & 0o777) == (0o700, 0o600)


def test_other_bytes_are_read_afresh(
    cache: Path, spec_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(spec_file)
    calls = parses(monkeypatch)
    spec_file.write_text(big_spec(first_port=2))
    changed = load(spec_file)
    assert calls == [str(spec_file)]
    assert changed.network.published_ports[0]["host_port"] == 2


def test_a_small_spec_is_never_kept(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = tmp_path / "small.yaml"
    small.write_text(big_spec(ports=3))
    calls = parses(monkeypatch)
    load(small)
    load(small)
    assert len(calls) == 2 and files(cache) == []


def test_an_empty_cache_dir_setting_keeps_nothing(
    tmp_path: Path, spec_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKYARD_CACHE_DIR", "")
    calls = parses(monkeypatch)
    load(spec_file)
    load(spec_file)
    assert len(calls) == 2 and sorted(tmp_path.iterdir()) == [spec_file]


def test_a_bad_spec_is_never_kept_and_always_located(
    cache: Path, spec_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_file.write_text(big_spec().replace("host_port: 7\n", "host_port: seven\n", 1))
    for _ in range(2):
        with pytest.raises(SpecError) as e:
            load(spec_file)
        assert e.value.problems[0].startswith(f"{spec_file}:")
        assert "host_port" in e.value.problems[0]
    assert files(cache) == []


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda f, c: f.chmod(0o644), id="file readable by others"),
        pytest.param(lambda f, c: f.chmod(0o620), id="file writable by its group"),
        pytest.param(lambda f, c: c.chmod(0o755), id="directory open to others"),
        pytest.param(
            lambda f, c: os.chown(f, 65534, 65534),
            id="file of another user",
            marks=pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root"),
        ),
        pytest.param(lambda f, c: os.link(f, c / "second-name"), id="file with a second name"),
        pytest.param(
            lambda f, c: f.write_bytes(f.read_bytes()[:-1] + b"\x00"), id="payload damaged"
        ),
        pytest.param(lambda f, c: f.write_bytes(b"dockyard-spec-1\n"), id="payload missing"),
    ],
)
def test_a_file_that_cannot_be_trusted_is_not_read(
    cache: Path, spec_file: Path, monkeypatch: pytest.MonkeyPatch, spoil: Any
) -> None:
    first = load(spec_file)
    (made,) = files(cache)
    spoil(made, cache)
    calls = parses(monkeypatch)
    assert load(spec_file) == first
    assert calls == [str(spec_file)]


def test_a_symlinked_file_is_not_followed(
    cache: Path, spec_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(spec_file)
    (made,) = files(cache)
    elsewhere = tmp_path / "elsewhere"
    made.rename(elsewhere)
    made.symlink_to(elsewhere)
    calls = parses(monkeypatch)
    load(spec_file)
    assert calls == [str(spec_file)]
    assert made.is_symlink()  # refused, left alone: the write goes nowhere through it


def test_a_pickle_that_is_not_a_spec_is_not_used(
    cache: Path, spec_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib
    import pickle

    load(spec_file)
    (made,) = files(cache)
    payload = pickle.dumps({"version": 1})
    made.write_bytes(b"dockyard-spec-1\n" + hashlib.sha256(payload).digest() + payload)
    calls = parses(monkeypatch)
    assert load(spec_file).network.published_ports
    assert calls == [str(spec_file)]


def test_changed_spec_code_never_meets_an_old_answer(
    cache: Path, spec_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(spec_file)
    monkeypatch.setattr(kept, "_code", lambda: b"the spec package as edited since")
    calls = parses(monkeypatch)
    load(spec_file)
    assert calls == [str(spec_file)] and len(files(cache)) == 2


def test_only_the_newest_are_kept(
    cache: Path, spec_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(kept.KEEP + 2):
        spec_file.write_text(big_spec(first_port=1 + n))
        load(spec_file)
        if files(cache):  # distinct modification times, for the order
            newest = max(files(cache), key=lambda p: p.stat().st_mtime_ns)
            os.utime(newest, ns=(10**18 + n * 10**9, 10**18 + n * 10**9))
    assert len(files(cache)) == kept.KEEP
    calls = parses(monkeypatch)
    load(spec_file)  # the last one written is among them
    assert calls == []


def test_a_process_that_exits_at_once_still_leaves_its_file(cache: Path, spec_file: Path) -> None:
    """The file is written on another thread while the run goes on; exiting waits for it."""
    code = "import sys; from dockyard.spec import load; load(sys.argv[1]); sys.exit(0)"
    subprocess.run([sys.executable, "-c", code, str(spec_file)], check=True, env=os.environ)
    assert len(files(cache)) == 1


@pytest.mark.parametrize(
    ("env", "euid", "expected"),
    [
        ({"DOCKYARD_CACHE_DIR": "/srv/kept"}, 0, "/srv/kept"),
        ({"DOCKYARD_CACHE_DIR": ""}, 0, None),
        ({}, 0, "/var/cache/dockyard"),
        ({"XDG_CACHE_HOME": "/home/u/.cache"}, 1000, "/home/u/.cache/dockyard"),
        ({"HOME": "/home/v"}, 1000, "/home/v/.cache/dockyard"),
    ],
)
def test_where_specs_are_kept(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], euid: int, expected: str | None
) -> None:
    for name in ("DOCKYARD_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    where = cachedir.directory()
    assert (str(where) if where else None) == expected


def test_the_reconcile_process_keeps_the_spec_before_it_ends(cache: Path, spec_file: Path) -> None:
    """`reconcile` ends with os._exit in its last exit function (dockyard.process): the spec
    is kept before that, even by a command that never waits on the host."""
    subprocess.run(
        [sys.executable, "-m", "dockyard", "validate", str(spec_file)],
        check=True,
        capture_output=True,
        env=os.environ,
    )
    assert len(files(cache)) == 1
