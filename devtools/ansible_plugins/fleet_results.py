"""An Ansible callback for the simulated fleet: each host's last task result, as JSON, in a
file named for the host under $DOCKYARD_FLEET_RESULTS. Tests read these instead of Ansible's
text output."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fleet_results"
    CALLBACK_NEEDS_ENABLED = True

    def _keep(self, result: Any, failed: bool = False, unreachable: bool = False) -> None:
        directory = Path(os.environ["DOCKYARD_FLEET_RESULTS"])
        directory.mkdir(parents=True, exist_ok=True)
        data = {k: v for k, v in result.result.items() if not k.startswith("_ansible")}
        data.update(failed=failed, unreachable=unreachable)
        (directory / result.host.get_name()).write_text(json.dumps(data, default=str))

    def v2_runner_on_ok(self, result: Any) -> None:
        self._keep(result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._keep(result, failed=True)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._keep(result, unreachable=True)
