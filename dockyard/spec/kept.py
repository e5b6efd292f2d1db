"""A large validated spec kept by the hash of its bytes, so that reading it again unchanged (a
timer's run every few minutes, a plan then an apply, a watch's reload) costs a hash and an
unpickle: at 100,000 ports about 0.05-0.1 s instead of 0.6-1 s of YAML and validation.

Only specs of at least FROM bytes are kept: a small one loads in milliseconds. The directory is
`DOCKYARD_CACHE_DIR` (empty: keep nothing), else /var/cache/dockyard for root, else
$XDG_CACHE_HOME/dockyard. Unpickling runs whatever the file says, so nothing is read unless
the directory and the file belong to this user and nobody else can write them (0700 and a
single-named 0600 file, reached without following a symlink below the directory), and the
payload's own SHA-256 matches. The key covers the spec's bytes and the code that validated
them (dockyard's spec package, yaml-rs, pydantic, Python): a changed rule never meets an old
answer. Only valid specs are kept; an error is always found afresh, with its positions.
The newest is kept with its bytes too (`then`: spec/incremental.py), to start from when the
next differs from it in a few published ports.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import pickle
import sys
from collections.abc import Callable
from pathlib import Path

from dockyard import background
from dockyard.spec.model import Spec
from dockyard.state import safepath
from dockyard.state.cachedir import directory, private

FROM = 256 << 10  # about 2,500 published ports
KEEP = 4  # the newest specs kept; older files are removed when a new one is written
_MAGIC = b"dockyard-spec-1\n"
_DIGEST = hashlib.sha256().digest_size
_SUFFIX = ".spec"


def get(raw: bytes) -> Spec | None:
    """The spec validated earlier from exactly these bytes, or None."""
    where = directory()
    if len(raw) < FROM or where is None:
        return None
    tree = safepath.Tree(where)
    name = _name(raw)
    try:
        if not private(tree.stat(""), "directory") or not private(tree.stat(name), "file"):
            return None
        data = tree.read(name, limit=len(raw) * 4 + (1 << 20))
    except (OSError, ValueError, safepath.Unsafe, safepath.TooLarge):
        return None
    if data is None or not data.startswith(_MAGIC):
        return None
    digest, payload = data[len(_MAGIC) : len(_MAGIC) + _DIGEST], data[len(_MAGIC) + _DIGEST :]
    if hashlib.sha256(payload).digest() != digest:
        return None
    try:
        spec = pickle.loads(payload)  # noqa: S301 - this user's own file, checked above
    except Exception:  # a damaged file is a miss, and is written again
        return None
    return spec if isinstance(spec, Spec) else None


def put(raw: bytes, spec: Spec, then: Callable[[], None] | None = None) -> None:
    """Keep `spec` for these bytes, on another thread, once the run waits on the host
    (`background`): at 100,000 ports pickling holds the interpreter for about 50 ms. The
    process waits for it at exit. Failing to keep it changes nothing but the next run's speed.
    `then` runs on that thread afterwards (`incremental` keeps the bytes to start from)."""
    where = directory()
    if len(raw) < FROM or where is None:
        return
    name = _name(raw)

    def work() -> None:
        _put(where, name, spec)
        if then is not None:
            then()

    background.later(work, "keeping the spec")


def _put(where: Path, name: str, spec: Spec) -> None:
    # As it is, not made compact (resident.compact): at 100,000 ports that would take 90 ms
    # of this thread's hold on the interpreter, while the run goes on, for a file unpickled
    # no faster (4.6 MB instead of 3.3).
    payload = pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)
    data = _MAGIC + hashlib.sha256(payload).digest() + payload
    with contextlib.suppress(OSError, ValueError, safepath.Unsafe):
        if not where.exists():
            where.mkdir(mode=0o700, parents=True)
        tree = safepath.Tree(where)
        if not private(tree.stat(""), "directory"):
            return
        tree.write(name, data, 0o600)
        _prune(tree, name)


def _prune(tree: safepath.Tree, newest: str) -> None:
    kept = [n for n in tree.listdir("") or [] if n.endswith(_SUFFIX) and n != newest]
    kept.sort(key=lambda n: tree.stat(n).mtime, reverse=True)
    for old in kept[KEEP - 1 :]:
        tree.unlink(old)


def _name(raw: bytes) -> str:
    key = hashlib.sha256(_code())
    key.update(raw)
    return key.hexdigest()[:40] + _SUFFIX


@functools.cache
def _code() -> bytes:
    """What decides the answer besides the bytes: the spec package's files as they are on disk
    (name, size, modification time), the versions of the parser, of pydantic and of Python."""
    import pydantic
    import pydantic_core
    import yaml_rs

    package = Path(__file__).parent
    files = sorted(p for p in package.iterdir() if p.suffix == ".py")
    seen = [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files]
    seen += [yaml_rs.__version__, pydantic.VERSION, pydantic_core.__version__, sys.version]
    return "\n".join(seen).encode()
