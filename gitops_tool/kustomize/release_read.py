"""Read-only loading of release files: libyaml's C parser, values as the text they were written as.

Edits need ruamel's round trip (comments, quoting, order), but reading the release state of every
environment (status, reconcile, the receiver's drift check) only needs the values, and the round
trip loader is ~15x slower. Plain scalars stay the text they were written as (a tag `1.10` is
"1.10", not the float 1.1); only null and the YAML 1.2 booleans true/false are resolved, so the
result matches what the round-trip reader gives for every file a promotion writes. Duplicate keys
are refused as the round-trip reader refuses them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from gitops_tool.errors import GitopsError

_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


@lru_cache(maxsize=1)
def _loader() -> type:
    import yaml

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        pass

    Loader.yaml_implicit_resolvers = {}
    Loader.add_implicit_resolver("tag:yaml.org,2002:null", _NULL, ["~", "n", "N", ""])
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))

    def mapping(loader: Any, node: Any) -> dict:
        out: dict = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in out:
                raise yaml.constructor.ConstructorError(None, None, f"found duplicate key {key!r}",
                                                        key_node.start_mark)
            out[key] = loader.construct_object(value_node, deep=True)
        return out

    Loader.add_constructor("tag:yaml.org,2002:map", mapping)
    return Loader


def load_release_file(path: Path) -> dict:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GitopsError(f"{path}: missing; run `gitops-tool generate` to create it") from None
    try:
        doc = yaml.load(text, Loader=_loader())
    except yaml.YAMLError as exc:
        raise GitopsError(f"{path}: corrupted YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise GitopsError(f"{path}: corrupted: expected a mapping at the top level")
    return doc
