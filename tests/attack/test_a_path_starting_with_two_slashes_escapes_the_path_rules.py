"""POSIX lets a path that starts with exactly two slashes mean something else than one slash,
so `PurePosixPath("//")` keeps both and is not equal to `PurePosixPath("/")`; Linux reads
`//x` as `/x`. The spec's path rules compared PurePosixPaths, so `root: //` passed the "must
not be / itself" rule (and dockyard then treated the whole file system as Docker's root), and
a `state_dir` or `pidfile` under root was not seen as under it when either was written with
two leading slashes (a stale pid file is deleted; the ledger would live in Docker's data).
"""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from dockyard.errors import SpecError
from dockyard.spec import load_text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "version: 1\nroot: //\n",
            "spec.yaml:2:7: root: must not be / itself; use a directory such as /var/lib/docker",
        ),
        (
            "version: 1\nroot: //var/lib/docker\nstate_dir: /var/lib/docker/dockyard\n",
            "spec.yaml:3:12: state_dir: must be outside root: dockyard's ledger is not "
            "Docker's data",
        ),
        (
            "version: 1\npidfile: //var/lib/docker/docker.pid\n",
            "spec.yaml:2:10: pidfile: must be outside root (/var/lib/docker): a stale pid file "
            "is deleted, and what is under root is Docker's data",
        ),
    ],
)
def test_two_leading_slashes_are_one(text: str, message: str) -> None:
    with pytest.raises(SpecError) as e:
        load_text(text, "spec.yaml")
    assert e.value.problems == [message]


def test_the_path_kept_is_the_one_linux_reads() -> None:
    spec = load_text("version: 1\nroot: //srv/docker\n")
    assert spec.root == PurePosixPath("/srv/docker")
    assert str(spec.root) == "/srv/docker"
