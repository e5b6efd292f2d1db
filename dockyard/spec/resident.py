"""A spec to hold for days: read in a child process, handed over compact.

Reading a 100,000-port spec leaves the reader's garbage behind: the YAML parser's and
pydantic's allocations, freed in a pattern the allocators cannot give back, keep a process at
about 180 MB for a spec whose objects take 25. A watch holds its spec for its whole life, so
it has a child read it and send it over pickled, with every repeated value (the same address
or port written 100,000 times) made one object first: what the watch keeps is only what
unpickling allocates. A bad spec is reported exactly as reading it in process would.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from typing import Any

from dockyard import background
from dockyard.errors import SpecError
from dockyard.spec.loader import load
from dockyard.spec.model import Spec


def load_resident(path: str) -> Spec:
    """The spec in `path`, read by a child process. When no child can be run (or it dies),
    read here instead: the result is the same spec, only larger in memory."""
    try:
        # -P: the working directory does not come first on the child's sys.path, so a file
        # there named like a module (yaml_rs.py) is never run as root.
        child = subprocess.run(
            [sys.executable, "-P", "-m", "dockyard.spec.resident", path],
            capture_output=True,
            check=False,
        )
    except OSError as e:
        return _here(path, str(e))
    if child.returncode != 0:
        lines = child.stderr.decode(errors="replace").strip().splitlines()
        return _here(path, lines[-1] if lines else f"exit status {child.returncode}")
    kind, value = pickle.loads(child.stdout)  # noqa: S301 - our own child's output
    if kind == "problems":
        raise SpecError(value)
    assert isinstance(value, Spec)
    return value


def _here(path: str, why: str) -> Spec:
    print(f"dockyard: the spec reader process failed ({why}); reading it here", file=sys.stderr)
    return load(path)


def compact(spec: Spec) -> Spec:
    """The same spec with each published port's repeated values shared (pickle then writes
    each once, and unpickling makes one object of it)."""
    ports = spec.network.published_ports
    if not ports:
        return spec
    seen: dict[Any, Any] = {}
    shared = [{k: seen.setdefault(v, v) for k, v in port.items()} for port in ports]
    network = spec.network.model_copy(update={"published_ports": shared})
    return spec.model_copy(update={"network": network})


def main(path: str) -> int:
    try:
        spec = load(path)
        background.waiting()  # keeping it (spec.kept) while it is handed over
        result: tuple[str, object] = ("spec", compact(spec))
    except SpecError as e:
        result = ("problems", e.problems)
    sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
