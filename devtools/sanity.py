"""`make sanity`: `ansible-test sanity` on the collection, on this machine.

ansible-test gives each sanity test a virtual environment of its own and puts pip into it
with get-pip.py, which it downloads from a host of its own (ci-files.testing.ansible.com).
That host cannot be reached from here, only the package registries can. ansible-test looks
for the script in its cache first, so this writes a stand-in there: pip from the Python's own
ensurepip, then the pip version ansible-test asks for, from the package index, as get-pip.py
would install it. Every other package ansible-test installs comes from the index as usual.
Its home (environments, caches) is .venv/ansible-test-home, reused by the next run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

from devtools.fleet import COLLECTION, REPO, tool

HOME = REPO / ".venv/ansible-test-home"

STAND_IN = '''\
"""Stand-in for get-pip.py (written by devtools/sanity.py): pip from ensurepip, then
`pip install --upgrade ARGS` from the package index."""
import ensurepip
import os
import subprocess
import sys

environment = dict(os.environ)
ensurepip.bootstrap(upgrade=True)  # it points PIP_CONFIG_FILE at /dev/null, for itself only
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
pip = [sys.executable, "-m", "pip", "install", "--upgrade", *args]
sys.exit(subprocess.call(pip, env=environment))
'''


def pip_version() -> str:
    """The pip that ansible-test puts in its environments (an internal of ansible-test: the
    collection's tests pin ansible-core below 2.20)."""
    from ansible_test._internal.python_requirements import get_venv_packages

    python = SimpleNamespace(version=f"{sys.version_info.major}.{sys.version_info.minor}")
    version: str = get_venv_packages(python)["pip"]
    return version


def main() -> int:
    cache = HOME / ".ansible/test/cache"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / f"get_pip_{pip_version().replace('.', '_')}.py").write_text(STAND_IN)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    argv = [tool("ansible-test"), "sanity", "--python", python, "--local", "--requirements"]
    env = {**os.environ, "HOME": str(HOME), "LC_ALL": "C.UTF-8"}
    return subprocess.run(argv, cwd=COLLECTION, env=env, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
