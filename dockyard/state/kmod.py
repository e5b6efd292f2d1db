"""Kernel modules: finding modprobe and loading one with it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping

SBIN = ("/usr/sbin", "/sbin")  # where modprobe lives when root's PATH lacks them


def modprobe(environ: Mapping[str, str]) -> str | None:
    """The modprobe program on `environ`'s PATH (then the sbin directories), or None."""
    search = os.pathsep.join([environ.get("PATH", ""), *SBIN])
    return shutil.which("modprobe", path=search)


def load(environ: Mapping[str, str], module: str) -> str | None:
    """Load `module`; None when it is loaded, else what went wrong."""
    program = modprobe(environ)
    if program is None:
        return "modprobe is gone"
    try:
        done = subprocess.run(
            [program, module], capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"modprobe {module}: {e}"
    if done.returncode != 0:
        return f"modprobe {module}: {done.stderr.strip() or f'exit status {done.returncode}'}"
    return None
