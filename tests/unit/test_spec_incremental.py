"""A spec changed in a few published ports, read from the newest kept one (dockyard/spec/
incremental.py): what it gives is exactly what reading the whole file gives, or it gives
nothing and the whole file is read, with every error located as always."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from dockyard import background
from dockyard.errors import SpecError
from dockyard.spec import incremental, kept, loader, rules
from dockyard.spec.incremental import Base
from dockyard.spec.model import Spec
from tests.unit.test_spec_kept import parses

EXAMPLES = int(os.environ.get("DOCKYARD_FUZZ_EXAMPLES", "300")) // 2
PARSE = loader.parse  # the whole-file read, as the tests below count calls to loader.parse


def full(text: str) -> Spec | list[str]:
    """What reading the whole file gives: the spec, or the problems."""
    try:
        return loader.validate(PARSE(text, "spec.yaml"))
    except SpecError as e:
        return e.problems


def base_of(text: str) -> Base | None:
    raw = text.encode()
    spec = full(text)
    assert isinstance(spec, Spec), spec
    items = incremental.items_of(raw, spec)
    return None if items is None else Base(raw, spec, items)


def read(base: Base, text: str) -> Spec | list[str]:
    """What `loader.load` gives for `text` once `base` is the newest kept spec."""
    derived = incremental.derive(base, text.encode())
    return full(text) if derived is None else derived[0]


def identical(a: Any, b: Any) -> bool:
    """Equal, and alike in what `==` does not look at: the fields set in each model, and the
    type of every value (1 == True)."""
    if isinstance(a, BaseModel) or isinstance(b, BaseModel):
        return (
            type(a) is type(b)
            and a.model_fields_set == b.model_fields_set
            and all(identical(getattr(a, f), getattr(b, f)) for f in type(a).model_fields)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(identical(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------- generated specs and edits


def key(name: str, quoting: str) -> str:
    return f"{quoting}{name}{quoting}"


@st.composite
def ports(draw: st.DrawFn, count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        port: dict[str, Any] = {}
        if draw(st.booleans()):
            port["proto"] = draw(st.sampled_from(["tcp", "udp", "'udp'", '"tcp"']))
        if draw(st.booleans()):
            port["host_ip"] = draw(st.sampled_from(["127.0.0.1", "0.0.0.0", "'10.0.0.1'"]))
        port["host_port"] = 1000 + i
        port["container_ip"] = f"172.17.0.{2 + i}"
        port["container_port"] = draw(st.sampled_from(["80", "443", "0x50", "8080", "65535"]))
        order = draw(st.permutations(list(port)))
        out.append({k: port[k] for k in order})
    return out


@st.composite
def specs(draw: st.DrawFn) -> str:
    """A valid spec of varied layout whose ports are, mostly, a block sequence."""
    quote = draw(st.sampled_from(["", "", '"', "'"]))
    indent = draw(st.sampled_from([2, 4]))
    under = draw(st.sampled_from([0, 2]))  # the items' column beyond their key's
    pad = " " * indent
    col = indent + under
    lines = ["# a spec", f"{key('version', quote)}: 1"]
    if draw(st.booleans()):
        lines.append("root: /srv/docker  # a comment")
    lines.append(f"{key('network', quote)}:")
    if draw(st.booleans()):
        lines.append(f"{pad}iptables: true")
    if draw(st.booleans()):
        lines.append(f"{pad}bridge: {{name: docker0}}")
    lines.append(f"{pad}{key('published_ports', quote)}:" + draw(st.sampled_from(["", " # p"])))
    entries = draw(ports(draw(st.integers(1, 6))))
    flows = [draw(st.integers(0, 30)) == 17 for _ in entries]  # 0 comes often
    anchored = not flows[0] and draw(st.integers(0, 20)) == 17
    for n, entry in enumerate(entries):
        if draw(st.integers(0, 8)) == 0:
            lines.append(draw(st.sampled_from(["", "# between", " " * col + "# between"])))
        if flows[n]:  # flow style
            pairs = ", ".join(f"{k}: {v}" for k, v in entry.items())
            lines.append(f"{' ' * col}- {{{pairs}}}")
            continue
        for m, (name, value) in enumerate(entry.items()):
            shown = value
            if anchored and n == 0 and name == "container_port":
                shown = f"&cp {value}"
            elif anchored and n > 0 and name == "container_port":
                shown = "*cp"
            lead = f"{' ' * col}- " if m == 0 else " " * (col + 2)
            tail = draw(st.sampled_from(["", "", "  # note"]))
            lines.append(f"{lead}{key(name, quote if m % 2 else '')}: {shown}{tail}")
    if draw(st.booleans()):
        lines.append(f"{pad}icc: true")
    if draw(st.booleans()):
        lines += ["dns:", f"{pad}servers: [8.8.8.8]"]
    return "\n".join(lines) + "\n"


ENTRY_LINES = st.sampled_from(
    [
        "- host_port: 7000\n  container_ip: 172.17.0.99\n  container_port: 80\n",
        "- host_ip: 127.0.0.1\n  host_port: 7020\n  container_ip: 172.17.0.99\n"
        "  container_port: 80\n",
        "- 'host_port': 7021 # c\n  container_ip: '172.17.0.99'\n\n  container_port: 0x50\n",
        "# new\n- host_port: 7022\n  container_ip: 172.17.0.99\n  container_port: 80\n",
        "- host_port: 1000\n  container_ip: 172.17.0.98\n  container_port: 80\n",  # a clash
        "- host_port: 0\n  container_ip: 172.17.0.97\n  container_port: 80\n",
        "- host_port: 7001\n  container_ip: 10.9.9.9\n  container_port: 80\n  proto: sctp\n",
        "- {host_port: 7002, container_ip: 172.17.0.96, container_port: 80}\n",
        "- host_port: &h 7003\n  container_ip: 172.17.0.95\n  container_port: *h\n",
        "- host_port: !!int 7004\n  container_ip: 172.17.0.94\n  container_port: 80\n",
        "- host_port: 7005\n  container_ip: |\n    172.17.0.93\n  container_port: 80\n",
        '- host_port: 7006\n  container_ip: "172.17.0.92"\n  container_port: 80 # x\n',
        "- host_port: 7007\n  container_ip: 172.17.0.91\n  container_port: 80\n  extra: 1\n",
        "- host_port: 7008\n  container_ip: 172.17.0.90\n  container_port: 80\n---\n",
        "- host_port: 7009\n container_ip: 172.17.0.89\n  container_port: 80\n",
        "- host_port: 7010\n  container_ip: 172.17.0.88\n  container_port: 80\n  host_port: 1\n",
        "-\n  host_port: 7011\n  container_ip: 172.17.0.87\n  container_port: 80\n",
        "- host_port: 7012\n  container_ip: 172.17.0.86\n  container_port:\n    80\n",
        "- host_port: '7013'\n  container_ip: 172.17.0.85\n  container_port: 80\n",
        "- host_port: 7014\n  container_ip: 172.17.\u00850.84\n  container_port: 80\n",
        "- host_port: 7015\n  container_ip: 172.17.0.83\n\tcontainer_port: 80\n",
    ]
)
VALUES = st.sampled_from(
    [
        "8080",
        "0",
        "70000",
        "abc",
        "'8080'",
        '"81"',
        "0x1F90",
        "null",
        "~",
        "[1]",
        "{a: 1}",
        "&a 1",
        "*a",
        "!!str 1",
        "|\n      1",
        "1 # c",
        "1.5",
        "true",
        "65535",
        "'a\n  b'",
    ]
)
FITTING = {
    "host_port": ["8080", "2000", "0x1F90", "1"],
    "container_port": ["8080", "1", "65535"],
    "container_ip": ["172.17.0.50", "'172.17.0.51'", '"172.17.0.52"  # c'],
    "host_ip": ["127.0.0.2", "0.0.0.0"],
    "proto": ["udp", "tcp"],
}
NOISE = st.text(st.sampled_from(list("- :#\"'\n {}[]&*!|>%.,0123456789abcxyz\t")), max_size=12)


def entry_lines(lines: list[str]) -> list[int]:
    """The lines of the published ports' entries."""
    at = next(i for i, line in enumerate(lines) if "published_ports" in line)
    keys = len(lines[at]) - len(lines[at].lstrip(" "))
    out = []
    for i in range(at + 1, len(lines)):
        stripped = lines[i].lstrip(" ")
        indent = len(lines[i]) - len(stripped)
        if indent <= keys and not stripped.startswith("- ") and stripped.strip()[:1] not in "#":
            break
        if ": " in stripped:
            out.append(i)
    return out


@st.composite
def edits(draw: st.DrawFn, text: str) -> str:
    lines = text.splitlines(keepends=True)
    entries = entry_lines(lines)
    items = [i for i in entries if lines[i].lstrip(" ").startswith("- ")]
    kind = draw(
        st.sampled_from(["value", "value", "value", "insert", "delete", "outside", "noise"])
    )
    event(f"edit: {kind}")
    if kind == "value" and entries:
        for _ in range(draw(st.integers(1, 2))):
            i = draw(st.sampled_from(entries))
            head = lines[i].partition(": ")[0]
            name = head.strip(" -'\"")
            value = draw(st.sampled_from(FITTING[name]) if draw(st.booleans()) else VALUES)
            lines[i] = f"{head}: {value}\n"
    elif kind == "insert" and items:
        i = draw(st.sampled_from([*items, entries[-1] + 1]))
        col = len(lines[items[0]]) - len(lines[items[0]].lstrip(" "))
        for _ in range(draw(st.integers(1, 2))):
            new = draw(ENTRY_LINES)
            lines.insert(i, "".join(" " * col + line for line in new.splitlines(keepends=True)))
    elif kind == "delete" and entries:
        i = draw(st.sampled_from(items if draw(st.booleans()) else entries))
        if draw(st.booleans()) and i in items:  # whole entries
            stop = [*items, entries[-1] + 1]
            del lines[i : stop[min(stop.index(i) + draw(st.integers(1, 2)), len(stop) - 1)]]
        else:
            del lines[i : i + draw(st.integers(1, 7))]
    elif kind == "outside":
        lines[1] = draw(st.sampled_from(["version: 2\n", "version: 1 # v\n", "version: 1\n"]))
        if draw(st.booleans()):
            lines.append(draw(st.sampled_from(["storage: {driver: vfs}\n", "---\n", "x: 1\n"])))
    out = "".join(lines)
    if kind == "noise":
        at = draw(st.integers(0, len(out)))
        cut = draw(st.integers(0, 8))
        out = out[:at] + draw(NOISE) + out[at + cut :]
    return out


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_reading_an_edit_from_the_kept_spec_is_reading_the_whole_file(data: st.DataObject) -> None:
    text = data.draw(specs())
    base = base_of(text)
    event("base usable" if base else "base not usable")
    assume(base is not None)
    assert base is not None
    edited = data.draw(edits(text))
    derived = incremental.derive(base, edited.encode())
    whole = full(edited)
    event("derived" if derived else "read whole")
    if derived is None:
        return
    spec, items = derived
    assert isinstance(whole, Spec), whole
    assert identical(spec, whole)
    # Where the ports stand, carried over, is where they are found from scratch.
    assert items == incremental.items_of(edited.encode(), whole)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_where_the_ports_stand_is_found_only_when_entries_are_plain(text: str) -> None:
    base = base_of(text)
    plain = "&cp" not in text and "- {" not in text
    assert (base is not None) == plain, text
    if base is not None:
        spec = base.spec
        assert base.items.count == len(spec.network.published_ports)
        raw = base.raw
        # What the items span, read on its own, is the list of ports.
        entries = yaml.safe_load(raw[base.items.start : base.items.end])
        assert len(entries) == base.items.count


# ---------------------------------------------------------------- the cases, one by one

BASE = """\
version: 1
network:
  iptables: true
  published_ports:
  - host_port: 1000
    container_ip: 172.17.0.2
    container_port: 80
  # the second
  - host_port: 1001
    container_ip: 172.17.0.3
    container_port: 80

  - host_port: 1002
    container_ip: 172.17.0.4
    container_port: 80
  icc: true
dns:
  servers: [8.8.8.8]
"""


def derived(text: str, base_text: str = BASE) -> Spec | None:
    base = base_of(base_text)
    assert base is not None
    found = incremental.derive(base, text.encode())
    if found is not None:
        assert identical(found[0], full(text))
    return None if found is None else found[0]


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(("container_port: 80\n  # the", "container_port: 81\n  # the"), id="value"),
        pytest.param(
            ("    container_port: 80\n  icc", "    container_port: 8080\n  icc"), id="last value"
        ),
        pytest.param(
            (
                "  # the second\n",
                "  - host_port: 2000\n    container_ip: 172.17.0.9\n    container_port: 80\n",
            ),
            id="insert",
        ),
        pytest.param(
            ("  - host_port: 1001\n    container_ip: 172.17.0.3\n    container_port: 80\n", ""),
            id="delete",
        ),
        pytest.param(
            (
                "container_port: 80\n  icc",
                "container_port: 80\n  - host_port: 3000\n"
                "    container_ip: 172.17.0.9\n    container_port: 80 # new\n  icc",
            ),
            id="append",
        ),
        pytest.param(("host_port: 1001", "\"host_port\": '1001'"), id="quoted key, text port"),
    ],
)
def test_a_change_within_plain_entries_is_read_alone(edit: tuple[str, str]) -> None:
    old, new = edit
    assert BASE.count(old) == 1
    text = BASE.replace(old, new)
    spec = derived(text)
    assert spec is not None or isinstance(full(text), list)


def test_a_plain_one_value_edit_is_read_alone() -> None:
    text = BASE.replace("host_port: 1001", "host_port: 2001")
    spec = derived(text)
    assert spec is not None
    assert [p["host_port"] for p in spec.network.published_ports] == [1000, 2001, 1002]


FALLS_BACK = {
    "anchor and alias": ("container_port: 80\n  # the", "container_port: &p 80\n  # the"),
    "alias": ("host_port: 1001", "host_port: *p"),
    "tag": ("host_port: 1001", "host_port: !!int 1001"),
    "flow entry": (
        "  - host_port: 1001\n    container_ip: 172.17.0.3\n    container_port: 80\n",
        "  - {host_port: 1001, container_ip: 172.17.0.3, container_port: 80}\n",
    ),
    "flow value": ("container_ip: 172.17.0.3", "container_ip: [172.17.0.3]"),
    "block scalar": ("container_ip: 172.17.0.3", "container_ip: |-\n      172.17.0.3"),
    "multi-line plain": ("container_ip: 172.17.0.3", "container_ip: 172.17.0.3\n      more"),
    "multi-line quoted": ("container_ip: 172.17.0.3", "container_ip: '172.17.0.3\n      '"),
    "document marker": ("  # the second\n", "---\n"),
    "document end": ("  # the second\n", "...\n"),
    "directive": ("  # the second\n", "%YAML 1.2\n"),
    "beyond the sequence": ("container_port: 80\n  icc: true", "container_port: 81\n  icc: false"),
    "before the sequence": (
        "iptables: true\n  published_ports:\n  - host_port: 1000",
        "iptables: false\n  published_ports:\n  - host_port: 1000",
    ),
    "outside the ports only": ("iptables: true", "iptables: false"),
    "the key itself": ("published_ports:\n", "published_ports: # now\n"),
    "all entries deleted": (BASE[BASE.index("  - host_port: 1000") : BASE.index("  icc")], ""),
    "an error: port 0": ("host_port: 1001", "host_port: 0"),
    "an error: unknown field": ("host_port: 1001", "host_port: 1001\n    hostport: 1"),
    "an error: key twice": ("host_port: 1001", "host_port: 1001\n    host_port: 1"),
    "an error: a clash": ("host_port: 1001", "host_port: 1000"),
    "an error: indentation": ("    container_ip: 172.17.0.3", "     container_ip: 172.17.0.3"),
    "an error: a tab": ("    container_ip: 172.17.0.3", "\tcontainer_ip: 172.17.0.3"),
    "an error: control character": ("host_port: 1001  # x", "host_port: 1001 # \x07"),
    "entry dash alone": ("  - host_port: 1001", "  -\n    host_port: 1001"),
    "entry with wider dash": (
        "  - host_port: 1001\n    container_ip: 172.17.0.3\n    container_port: 80\n",
        "  -   host_port: 1001\n      container_ip: 172.17.0.3\n      container_port: 80\n",
    ),
    "CRLF": ("host_port: 1001\n", "host_port: 1001\r\n"),
}


@pytest.mark.parametrize("edit", list(FALLS_BACK.values()), ids=list(FALLS_BACK))
def test_anything_else_is_read_whole(edit: tuple[str, str]) -> None:
    old, new = edit
    base = BASE.replace("host_port: 1001\n", "host_port: 1001  # x\n") if "# x" in old else BASE
    assert base.count(old) == 1, old
    text = base.replace(old, new)
    assert text != base
    assert derived(text, base) is None


def test_an_edit_that_ends_the_file_without_a_line_feed_is_read_whole() -> None:
    base = BASE.replace("  icc: true\ndns:\n  servers: [8.8.8.8]\n", "")
    assert derived(base.rstrip("\n"), base) is None


@pytest.mark.parametrize(
    "base_text",
    [
        pytest.param(
            BASE.replace("container_ip: 172.17.0.3", "container_ip: '172.17.0.3'").replace(
                "container_port: 80\n  icc", "container_port: 80 # end\n  icc"
            ),
            id="quoted and commented",
        ),
        pytest.param(
            BASE.replace("\n  - ", "\n    - ")
            .replace("\n    container", "\n      container")
            .replace("    # the second", "  # the second"),
            id="items indented under their key",
        ),
        pytest.param(
            BASE.replace("network:\n", 'network:\n  bridge: {name: "x"}\n'),
            id="flow mapping before",
        ),
        pytest.param(
            BASE.replace("version: 1\n", "version: 1\nroot: /srv/d\u00e9j\u00e0\n"),
            id="non-ASCII before",
        ),
    ],
)
def test_bases_of_other_plain_layouts_are_used(base_text: str) -> None:
    text = base_text.replace("host_port: 1002", "host_port: 3002")
    assert derived(text, base_text) is not None


@pytest.mark.parametrize(
    "base_text",
    [
        pytest.param(
            BASE.replace("container_port: 80\n  icc", "container_port: *p\n  icc").replace(
                "container_port: 80\n  # the", "container_port: &p 80\n  # the"
            ),
            id="anchor and alias (read by PyYAML)",
        ),
        pytest.param(
            BASE.replace("container_ip: 172.17.0.3", "container_ip: !!str 172.17.0.3"), id="tag"
        ),
        pytest.param(
            BASE.replace("container_ip: 172.17.0.3", 'container_ip: "172.17.\\\n      0.3"'),
            id="multi-line quoted",
        ),
        pytest.param(
            BASE.replace(
                "    container_ip: 172.17.0.3\n", "    container_ip: >-\n      172.17.0.3\n"
            ),
            id="block scalar",
        ),
        pytest.param(json.dumps(yaml.safe_load(BASE), indent=2), id="JSON"),
        pytest.param(
            BASE.replace("\n  - host_port: 1001", "\n  -\n    host_port: 1001"), id="dash alone"
        ),
    ],
)
def test_no_base_is_kept_from_a_spec_whose_ports_are_not_plain(base_text: str) -> None:
    spec = full(base_text)
    assert isinstance(spec, Spec), spec
    assert incremental.items_of(base_text.encode(), spec) is None


# ---------------------------------------------------------------- through `load`, at size

PORTS = 3000  # about 300 KB of YAML: above kept.FROM


def big_spec(changed: int | None = None, port: int = 65001) -> str:
    """As yaml.safe_dump(..., sort_keys=False) writes it (the bench's and the sandbox's
    layout), written here directly: a tenth of the time."""
    entries = "".join(
        f"  - host_ip: 127.0.0.1\n    host_port: {1 + i}\n"
        f"    container_ip: 172.17.{i // 250}.{i % 250 + 2}\n"
        f"    container_port: {port if i == changed else 80}\n"
        for i in range(PORTS)
    )
    return f"version: 1\nnetwork:\n  published_ports:\n{entries}"


def test_the_large_specs_are_laid_out_as_yaml_writes_them() -> None:
    data = yaml.safe_load(big_spec(changed=3))
    assert yaml.safe_dump(data, sort_keys=False) == big_spec(changed=3)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "cache"
    monkeypatch.setenv("DOCKYARD_CACHE_DIR", str(where))
    return where


@pytest.fixture
def spec_file(tmp_path: Path, cache: Path) -> Path:
    """A large spec, read once: the newest kept."""
    path = tmp_path / "spec.yaml"
    path.write_text(big_spec())
    assert path.stat().st_size >= kept.FROM
    load(path)
    assert (cache / incremental.BASE).exists()
    return path


def load(path: Path) -> Spec:
    spec = loader.load(path)
    background.finish()
    return spec


def test_one_changed_mapping_is_read_without_reading_the_whole_file(
    spec_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_file.write_text(big_spec(changed=PORTS // 2))
    calls = parses(monkeypatch)
    spec = load(spec_file)
    assert calls == []
    assert spec.network.published_ports[PORTS // 2]["container_port"] == 65001
    assert identical(spec, full(spec_file.read_text()))


def test_a_spec_made_so_is_kept_and_started_from_in_turn(
    spec_file: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = parses(monkeypatch)
    for n, changed in enumerate([10, 20, 20]):
        spec_file.write_text(big_spec(changed=changed, port=60000 + n))
        spec = load(spec_file)
        assert identical(spec, full(spec_file.read_text()))
    before = load(spec_file)  # the same bytes: kept
    assert calls == [] and before.network.published_ports[20]["container_port"] == 60002
    # The file kept to start from is the newest spec's bytes, checksummed, with a header.
    stored = (cache / incremental.BASE).read_bytes()
    assert stored.endswith(spec_file.read_bytes())
    assert len(stored) - spec_file.stat().st_size == 16 + 32 + 32
    assert (cache / incremental.BASE).stat().st_mode & 0o777 == 0o600


def test_an_error_in_the_changed_mapping_is_found_and_located_as_always(
    spec_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = big_spec(changed=PORTS // 2, port=70000)
    expected = full(text)
    assert isinstance(expected, list) and "70000" in expected[0]
    spec_file.write_text(text)
    calls = parses(monkeypatch)
    with pytest.raises(SpecError) as e:
        load(spec_file)
    assert calls == [str(spec_file)]
    assert e.value.problems == [p.replace("spec.yaml", str(spec_file), 1) for p in expected]


def test_a_change_outside_the_ports_is_read_whole(
    spec_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """... without unpickling the kept spec it would have started from: only the new bytes
    are looked up (and missed)."""
    spec_file.write_text(big_spec(changed=5).replace("version: 1\n", "version: 1\nselinux: true\n"))
    calls = parses(monkeypatch)
    looked_up: list[bytes] = []
    real_get = kept.get
    monkeypatch.setattr(kept, "get", lambda raw: looked_up.append(raw) or real_get(raw))
    assert load(spec_file).selinux is True
    assert calls == [str(spec_file)]
    assert looked_up == [spec_file.read_bytes()]


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda f, c: f.chmod(0o644), id="file readable by others"),
        pytest.param(lambda f, c: c.chmod(0o755), id="directory open to others"),
        pytest.param(
            lambda f, c: os.chown(f, 65534, 65534),
            id="file of another user",
            marks=pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root"),
        ),
        pytest.param(lambda f, c: os.link(f, c / "second-name"), id="file with a second name"),
        pytest.param(lambda f, c: f.write_bytes(f.read_bytes()[:-2] + b"9\n"), id="bytes damaged"),
        pytest.param(lambda f, c: f.write_bytes(f.read_bytes()[:200]), id="cut short"),
        pytest.param(lambda f, c: [p.unlink() for p in c.glob("*.spec")], id="its kept spec gone"),
    ],
)
def test_a_base_that_cannot_be_trusted_is_not_started_from(
    spec_file: Path, cache: Path, monkeypatch: pytest.MonkeyPatch, spoil: Any
) -> None:
    spoil(cache / incremental.BASE, cache)
    spec_file.write_text(big_spec(changed=7))
    calls = parses(monkeypatch)
    assert identical(load(spec_file), full(spec_file.read_text()))
    assert calls == [str(spec_file)]


def test_a_base_with_bytes_that_are_not_its_specs_is_not_started_from(
    spec_file: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes and header rewritten with a checksum that matches: the kept spec is found by
    the hash of the bytes, and no spec was kept for these."""
    stored = (cache / incremental.BASE).read_bytes()
    payload = stored[48:].replace(b"container_port: 80\n", b"container_port: 81\n", 1)
    (cache / incremental.BASE).write_bytes(stored[:16] + hashlib.sha256(payload).digest() + payload)
    spec_file.write_text(big_spec(changed=7))
    calls = parses(monkeypatch)
    assert identical(load(spec_file), full(spec_file.read_text()))
    assert calls == [str(spec_file)]


def test_changed_spec_code_never_starts_from_an_old_base(
    spec_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kept, "_code", lambda: b"the spec package as edited since")
    spec_file.write_text(big_spec(changed=7))
    calls = parses(monkeypatch)
    load(spec_file)
    assert calls == [str(spec_file)]


def test_a_spec_whose_ports_are_not_plain_replaces_the_base(
    spec_file: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read whole, not kept as a base (its entries cannot be told apart by their lines), and
    the base kept before is removed: it is not this spec."""
    spec_file.write_text(json.dumps(yaml.safe_load(big_spec(changed=3)), indent=2))
    load(spec_file)
    assert not (cache / incremental.BASE).exists()
    spec_file.write_text(big_spec(changed=4))
    calls = parses(monkeypatch)
    load(spec_file)
    assert calls == [str(spec_file)]
    assert (cache / incremental.BASE).exists()


def test_without_a_cache_directory_nothing_is_started_from(
    spec_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKYARD_CACHE_DIR", "")
    spec_file.write_text(big_spec(changed=7))
    calls = parses(monkeypatch)
    load(spec_file)
    assert calls == [str(spec_file)]


# ---------------------------------------------------------------- the rules, on what changed

PORT = st.fixed_dictionaries(
    {
        "host_port": st.integers(1, 3),
        "container_ip": st.sampled_from(["172.17.0.2", "172.17.0.3", "10.0.0.2"]),
        "container_port": st.just(80),
    },
    optional={
        "proto": st.sampled_from(["tcp", "udp"]),
        "host_ip": st.sampled_from(["0.0.0.0", "127.0.0.1", "127.0.0.2"]),
    },
)


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(
    st.lists(PORT, min_size=1, max_size=8),
    st.lists(PORT, max_size=3),
    st.integers(0, 8),
    st.integers(0, 3),
    st.sampled_from(["auto", "172.17.0.1/24"]),
    st.booleans(),
)
def test_the_rules_on_what_changed_say_what_the_rules_on_all_say(
    ports: list[dict[str, Any]],
    added: list[dict[str, Any]],
    at: int,
    removed: int,
    address: str,
    selinux_btrfs: bool,
) -> None:
    def spec_of(published: list[dict[str, Any]], odd: bool = False) -> Spec:
        return Spec.model_validate(
            {
                "version": 1,
                "selinux": odd,
                "storage": {"driver": "btrfs" if odd else "auto"},
                "network": {"bridge": {"address": address}, "published_ports": published},
            }
        )

    base = spec_of(ports)
    assume(not rules.check(base))
    at = min(at, len(ports))
    published = [*ports[:at], *added, *ports[at + removed :]]
    spec = spec_of(published, selinux_btrfs)
    valid = spec_of(added).network.published_ports
    assert rules.still_valid(spec, valid) == (not rules.check(spec))
