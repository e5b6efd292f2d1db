"""moby's TestTruncIndex (pkg/truncindex, Docker 1.6) re-typed as a table and run against
dockyard's equivalent, `containers.find` (`reconcile show --container PREFIX`): an id by any
unique prefix. Docker's index changed by Add and Delete; dockyard's is the containers on disk,
so each stage of the table is the set of ids Docker's index held at that point.

Not carried over: Add's refusal of an id with a space or an empty id (dockyard adds nothing:
the ids are the directory names under `containers/`). An empty prefix is an error in both;
Docker said "Prefix can't be empty", dockyard says no container starts with ''.
"""

from __future__ import annotations

import pytest

from dockyard.errors import DockyardError
from dockyard.reconcilers.containers import ContainerEntry, find

ID = "99b36c2c326ccc11e726eee6ee78a0baf166ef96"
ID2 = ID[:6] + "blabla"
MISSING, AMBIGUOUS = "no such id", "ambiguous"

# (ids in the index, prefix asked, the id found or the error)
TRUNCINDEX = [
    ((), "foobar", MISSING),
    ((ID,), "abracadabra", MISSING),
    ((ID,), "", MISSING),
    ((ID,), ID, ID),
    ((ID,), ID[:1], ID),
    ((ID,), ID[: len(ID) // 2], ID),
    ((ID,), ID[len(ID) // 2 :], MISSING),
    ((ID, ID2), ID, ID),
    ((ID, ID2), ID2, ID2),
    ((ID, ID2), ID[:6], AMBIGUOUS),
    ((ID, ID2), ID[:4], AMBIGUOUS),
    ((ID, ID2), ID[:1], AMBIGUOUS),
    ((ID, ID2), ID[:7], ID),
    ((ID, ID2), ID2[:7], ID2),
    ((ID,), ID2, MISSING),  # after Delete(ID2)
    ((ID,), ID2[:7], MISSING),
    ((ID,), ID2[:11], MISSING),
    ((ID,), ID[:6], ID),
    ((ID,), ID[:4], ID),
    ((ID,), ID[:1], ID),
    ((ID,), ID[:7], ID),
    ((ID,), ID[:15], ID),
]


@pytest.mark.parametrize(("ids", "prefix", "found"), TRUNCINDEX)
def test_truncindex(ids: tuple[str, ...], prefix: str, found: str) -> None:
    entries = tuple(ContainerEntry(i) for i in ids)
    if found in (MISSING, AMBIGUOUS):
        with pytest.raises(DockyardError) as e:
            find(prefix, entries)
        start = f"{prefix!r} is ambiguous" if found == AMBIGUOUS else "no container with an id"
        assert str(e.value).startswith(start)
    else:
        assert find(prefix, entries).id == found
