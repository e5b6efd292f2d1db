"""A tag store file (`repositories-<driver>`) as Docker 1.x's TagStore loaded it."""

from __future__ import annotations

from dockyard.state import gojson

LOAD_FAILS = "Docker's json.Unmarshal fails on it"


def problem(raw: bytes) -> str | None:
    """Why Docker 1.x could not load this tag store (`map[string]map[string]string` under
    `Repositories`), or None. `{}`, `null` and null repositories or tags load: Go leaves the
    field as it was."""
    try:
        doc = gojson.unmarshal(raw)
    except (ValueError, RecursionError) as e:
        return f"not valid JSON ({e})"
    top = gojson.members(doc)
    if top is None:
        if doc is None:
            return None
        return f"valid JSON, but {gojson.a_kind(doc)} where an object belongs; {LOAD_FAILS}"
    for repositories in gojson.field(top, "Repositories"):
        repos = gojson.members(repositories)
        if repos is None and repositories is not None:
            return f'"Repositories" is {gojson.a_kind(repositories)}, not an object; {LOAD_FAILS}'
        for name, tags in repos or ():
            tag_map = gojson.members(tags)
            if tag_map is None and tags is not None:
                return (
                    f"repository {name!r} is {gojson.a_kind(tags)}, not an object of "
                    f"tag -> image id; {LOAD_FAILS}"
                )
            for tag, image in tag_map or ():
                if image is not None and not isinstance(image, str):
                    return f"{name}:{tag} is {gojson.a_kind(image)}, not an image id; {LOAD_FAILS}"
    return None
