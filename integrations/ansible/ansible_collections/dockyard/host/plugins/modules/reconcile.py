#!/usr/bin/python
# Copyright: the dockyard developers
# Apache License 2.0 (see the collection's galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: reconcile
short_description: Prepare a container host as a dockyard spec declares, or take it down
version_added: "0.1.0"
description:
  - Runs dockyard on the target host. dockyard observes the host, diffs it against the spec,
    applies only the difference in dependency order, observes again to verify, and undoes the
    run's changes if anything fails. A second run changes nothing.
  - It talks to dockyard through its Python API when the module's interpreter can import
    C(dockyard), otherwise by running a dockyard program (O(executable)) with C(-o json). It
    never reads dockyard's text output.
  - The result holds dockyard's versioned plan document (RV(plan)), the drift that was found
    (RV(drift)) and dockyard's notes (RV(notes)).
options:
  spec:
    description:
      - The spec itself, as the YAML file would hold it, so that inventories and group_vars
        can template it per host. A spec of C(version) 1 alone means Docker 1.x's defaults.
      - An invalid spec fails the task with every problem, each naming its field and its
        line and column in the YAML rendering that dockyard checked.
      - Exactly one of O(spec) and O(path) is required.
    type: dict
  path:
    description:
      - A spec file on the target host.
    type: path
    aliases: [spec_file]
  state:
    description:
      - V(present) converges the host to the spec (C(reconcile apply)).
      - V(absent) removes what dockyard owns at run time, its firewall rules and chains, the
        bridge it created and a stale pid file (C(reconcile down)). Data is never removed.
    type: str
    choices: [present, absent]
    default: present
  force_dns:
    description:
      - Rewrite C(<root>/resolv.conf) even when it was edited by hand.
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait for another dockyard run to release dockyard's lock, from 0 to
        86400.
    type: float
    default: 30
  executable:
    description:
      - A dockyard program on the target host, run with C(-o json) - the C(reconcile) of a
        virtual environment, or the single-file build (C(reconcile.pyz)).
      - When it is not given, the module's interpreter imports C(dockyard); if it cannot,
        C(reconcile) is looked for on E(PATH) and in C(/opt/dockyard/bin), where the role
        P(dockyard.host.install#role) puts it.
    type: path
attributes:
  check_mode:
    support: full
    description:
      - Computes the plan and changes nothing. C(changed) then says whether a run would
        change something.
  diff_mode:
    support: full
    description:
      - One diff per change of the plan, from the attributes dockyard found and those it
        wants.
  platform:
    support: full
    platforms: posix
    description: Linux hosts (network namespaces, iptables, netlink).
notes:
  - dockyard takes the xtables lock, C(/run/xtables.lock) unless E(XTABLES_LOCKFILE) names
    another; set it with the task's C(environment) keyword.
  - A watch (C(reconcile watch), C(dockyard.service)) holds dockyard's lock for its whole
    life, so on a host that runs one, converging with this module fails at once, naming the
    watch (O(lock_timeout) is for other runs, which let go). Check mode needs no lock and
    works beside a watch. To change the
    spec of a watched host, write its spec file and reload the service (the role
    P(dockyard.host.install#role) does that).
requirements:
  - dockyard on the target host, importable by the module's interpreter or installed as a
    program (O(executable)), for instance by the role P(dockyard.host.install#role).
  - root on the target host.
author:
  - The dockyard developers (@dockyard)
"""

EXAMPLES = r"""
- name: Prepare the container hosts, one published port per host
  dockyard.host.reconcile:
    spec:
      version: 1
      network:
        bridge:
          mtu: 1450
        published_ports:
          - proto: tcp
            host_ip: 0.0.0.0
            host_port: "{{ web_port }}"
            container_ip: 172.17.0.2
            container_port: 80

- name: Converge to the spec file the host already has
  dockyard.host.reconcile:
    path: /etc/dockyard/spec.yaml
    executable: /opt/dockyard/bin/reconcile

- name: What would change, and where the hosts drifted
  dockyard.host.reconcile:
    path: /etc/dockyard/spec.yaml
  check_mode: true
  register: planned

- name: Show the drift
  ansible.builtin.debug:
    var: planned.drift

- name: Take down the rules, chains and bridge dockyard made (never data)
  dockyard.host.reconcile:
    path: /etc/dockyard/spec.yaml
    state: absent
"""

RETURN = r"""
plan:
  description:
    - dockyard's document for this run, as C(reconcile plan -o json),
      C(reconcile apply -o json) or C(reconcile down -o json) print it.
  returned: when dockyard could read the spec and start
  type: dict
  contains:
    format_version:
      description: The version of this document's layout.
      type: int
      sample: 1
    command:
      description: V(plan) in check mode, else V(apply); V(down) for O(state=absent).
      type: str
      sample: apply
    changes:
      description:
        - Every change of the plan, in the order dockyard applies them.
      type: list
      elements: dict
      sample:
        - reconciler: bridge
          resource: bridge docker0
          action: update
          before: {address: 172.17.42.1/16, mtu: 1500, mac: "02:de:ad:65:4d:be", state: up}
          after: {address: 172.17.42.1/16, mtu: 1450, mac: "02:de:ad:65:4d:be", state: up}
          reason: mtu differs
    notes:
      description: Notes that are not changes; one with severity V(error) stops the run.
      type: list
      elements: dict
    summary:
      description: How many resources are created, updated and deleted.
      type: dict
      sample: {create: 1, update: 2, delete: 0}
    pending:
      description: Whether changes are pending.
      returned: in check mode
      type: bool
    applied:
      description: The changes that were applied.
      returned: when not in check mode
      type: list
      elements: dict
    rolled_back:
      description: The changes of this run that were undone after a failure.
      returned: when not in check mode
      type: list
      elements: dict
    undo_failures:
      description: What could not be undone.
      returned: when not in check mode
      type: list
      elements: str
    converged:
      description: Whether the host was verified to match.
      returned: when not in check mode
      type: bool
    error:
      description: Why the run failed, or null.
      returned: when not in check mode
      type: str
drift:
  description:
    - The changes the host needed, one line each, marked as dockyard's plan marks them (V(+)
      create, V(~) update, V(-) delete, V(-/+) replace). Empty when the host matched.
  returned: when dockyard could read the spec and start
  type: list
  elements: str
  sample: ["~ bridge docker0", "~ sysctl net.ipv4.ip_forward"]
notes:
  description: dockyard's notes about the host, with their reconciler and severity.
  returned: when dockyard could read the spec and start
  type: list
  elements: dict
  sample:
    - reconciler: sysinfo
      severity: warning
      message: "Your kernel does not support cgroup swap limit."
spec_errors:
  description:
    - "Every problem of an invalid spec, each as C(source:line:col: field: problem)."
  returned: when the spec is invalid
  type: list
  elements: str
  sample:
    - "<inline spec>:4:10: network.bridge.mtu: must be auto or a number from 68 to 65535, got 10"
"""

import json
import math
import os
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

try:
    from dockyard import api as dockyard_api
    from dockyard.errors import DockyardError, SpecError
except ImportError:
    dockyard_api = None

SYMBOLS = {"create": "+", "update": "~", "delete": "-", "replace": "-/+"}
INSTALLED = "/opt/dockyard/bin"
INLINE = "<inline spec>"  # as dockyard.api names a spec given as data
LOCK_TIMEOUT_RANGE = (0, 86400)  # as `reconcile --lock-timeout` and dockyard.api take it


class Stopped(Exception):
    """dockyard did not start a run: `msg` says why, `result` holds what the task returns."""

    def __init__(self, msg, **result):
        super().__init__(msg)
        self.msg = msg
        self.result = result


def in_process(params, check):
    """The run through dockyard's Python API, in this process."""
    source = params["spec"] if params["spec"] is not None else params["path"]
    teardown = params["state"] == "absent"
    try:
        spec = dockyard_api.load(source)
        if check:
            return dockyard_api.plan(spec, teardown=teardown, force_dns=params["force_dns"])
        return dockyard_api.apply(
            spec,
            teardown=teardown,
            force_dns=params["force_dns"],
            lock_timeout=params["lock_timeout"],
        )
    except SpecError as e:
        raise Stopped("the spec is not valid", spec_errors=e.problems) from None
    except DockyardError as e:
        raise Stopped(str(e)) from None
    except OSError as e:
        raise Stopped(f"{e.strerror}: {e.filename}") from None


def command_for(params, check):
    """The program's command and options (the spec file goes after the first word)."""
    words = ["down" if params["state"] == "absent" else "apply"]
    if check:
        words += ["--dry-run"]
    else:
        words += ["--lock-timeout", str(params["lock_timeout"])]
    if params["force_dns"] and params["state"] == "present":
        words += ["--force-dns"]
    return words


def spec_file(module):
    """The spec file the program reads: O(path), or O(spec) written as JSON (which is YAML),
    in UTF-8: YAML reads an escaped surrogate pair as two lone surrogates."""
    if module.params["spec"] is None:
        return module.params["path"]
    path = str(Path(module.tmpdir) / "spec.yaml")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(module.params["spec"], f, indent=2, ensure_ascii=False)
        f.write("\n")
    return path


def through_program(module, program, check):
    """The run through a dockyard program's JSON document (`-o json`)."""
    path = spec_file(module)
    words = command_for(module.params, check)
    rc, out, err = module.run_command(
        [program, words[0], path, *words[1:], "-o", "json"],
        environ_update={"NO_COLOR": "1"},
    )
    try:
        doc = json.loads(out)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and "format_version" in doc:
        return doc
    # No document: dockyard stopped before a run began. A spec that does not validate is
    # the usual reason; `validate -o json` lists every problem. A program that gives no
    # list there either is not dockyard, or cannot start: what it said is the reason.
    problems = validation(module, program, path, module.params["spec"] is not None)
    if problems:
        raise Stopped("the spec is not valid", spec_errors=problems)
    reason = err.strip()
    if problems is None:
        said = f": {reason}" if reason else ""
        raise Stopped(f"{program} gave no dockyard document (exit {rc}){said}", rc=rc)
    raise Stopped(reason or f"{program} exited with {rc}", rc=rc)


def validation(module, program, path, inline):
    """The spec's problems as `source:line:col: field: problem` from `validate -o json`
    ([] for a valid spec), or None when the program gives no such list. The source of an
    O(spec) is named as in process, not as the module's temporary file."""
    out = module.run_command([program, "validate", path, "-o", "json"])[1]
    try:
        problems = json.loads(out)
    except ValueError:
        return None
    if not isinstance(problems, list) or not all(isinstance(p, dict) for p in problems):
        return None
    return [located(p, INLINE if inline else None) for p in problems]


def located(problem, source=None):
    """One problem of `validate -o json` as dockyard words it: `file:line:col: path: message`,
    without the parts it does not have; `source`, when given, in place of its file."""
    place = source or problem.get("file") or ""
    if problem.get("line") is not None:
        place = f"{place}:{problem['line']}:{problem.get('col')}"
    field = f"{problem['path']}: " if problem.get("path") else ""
    return f"{place}: {field}{problem.get('message', '')}"


def drift_of(doc):
    return [f"{SYMBOLS.get(c['action'], c['action'])} {c['resource']}" for c in doc["changes"]]


def attribute_lines(attrs):
    """A change's attributes, one per line; a text block or a list line by line, so that
    a diff shows which lines of a file or which rules changed."""
    lines = []
    for key, value in (attrs or {}).items():
        if isinstance(value, str) and "\n" in value:
            lines.append(f"{key}: |")
            lines.extend(f"  {line}" for line in value.splitlines())
        elif isinstance(value, list) and value:
            lines.append(f"{key}:")
            lines.extend(f"  - {json.dumps(item, sort_keys=True)}" for item in value)
        else:
            lines.append(f"{key}: {json.dumps(value, sort_keys=True)}")
    return "".join(f"{line}\n" for line in lines)


def diffs_of(doc):
    out = []
    for c in doc["changes"]:
        header = f"{SYMBOLS.get(c['action'], c['action'])} {c['resource']}"
        out.append(
            {
                "before_header": header,
                "after_header": f"{header} ({c['reason']})",
                "before": attribute_lines(c["before"]),
                "after": attribute_lines(c["after"]),
            }
        )
    return out


def summary_text(doc, check):
    n = doc["summary"]
    if not doc["changes"]:
        return "nothing to take down" if doc["command"] == "down" else "the host matches the spec"
    counts = f"{n['create']} to create, {n['update']} to update, {n['delete']} to delete"
    return f"pending: {counts}" if check else f"applied and verified: {counts}"


def outcome(module, doc):
    """The task's result from dockyard's document: exit, or fail with dockyard's reason."""
    check = module.check_mode
    result = {"plan": doc, "drift": drift_of(doc), "notes": doc["notes"]}
    if module._diff:
        result["diff"] = diffs_of(doc)
    errors = [n for n in doc["notes"] if n["severity"] == "error"]
    for note in doc["notes"]:
        if note["severity"] == "warning":
            module.warn(f"{note['reconciler']}: {note['message']}")
    if check:
        result["changed"] = bool(doc["changes"])
        if errors:
            reasons = "; ".join(f"{n['reconciler']}: {n['message']}" for n in errors)
            module.fail_json(msg=f"a run would fail before changing anything: {reasons}", **result)
        module.exit_json(msg=summary_text(doc, check), **result)
    if not doc["converged"]:
        # Rolled back: nothing stays changed unless an undo failed.
        result["changed"] = bool(doc["undo_failures"])
        module.fail_json(msg=doc["error"], **result)
    result["changed"] = bool(doc["applied"])
    module.exit_json(msg=summary_text(doc, check), **result)


def main():
    module = AnsibleModule(
        argument_spec={
            "spec": {"type": "dict"},
            "path": {"type": "path", "aliases": ["spec_file"]},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "force_dns": {"type": "bool", "default": False},
            "lock_timeout": {"type": "float", "default": 30.0},
            "executable": {"type": "path"},
        },
        mutually_exclusive=[("spec", "path")],
        required_one_of=[("spec", "path")],
        supports_check_mode=True,
    )
    low, high = LOCK_TIMEOUT_RANGE
    timeout = module.params["lock_timeout"]
    if not (math.isfinite(timeout) and low <= timeout <= high):
        # NaN or infinity would wait forever on a held lock.
        module.fail_json(
            msg=f"lock_timeout: a number of seconds from {low} to {high}, not {timeout:g}",
            changed=False,
        )
    program = module.params["executable"]
    if program is None and dockyard_api is None:
        program = module.get_bin_path("reconcile", opt_dirs=[INSTALLED])
        if program is None:
            module.fail_json(
                msg="dockyard is neither importable by this interpreter nor installed as a "
                f"program (reconcile on PATH or in {INSTALLED}); install it with the role "
                "dockyard.host.install, or name it with the executable option"
            )
    try:
        if program is None:
            doc = in_process(module.params, module.check_mode)
        else:
            doc = through_program(module, program, module.check_mode)
    except Stopped as stopped:
        module.fail_json(msg=stopped.msg, changed=False, **stopped.result)
    outcome(module, doc)


if __name__ == "__main__":
    main()
