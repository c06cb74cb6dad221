"""Placeholder values in gitops.yaml that would break a real sync: the starter's example registries,
repository URLs and hosts. `validate` warns about them; `validate --strict` fails on them.

Reserved names (RFC 2606 / RFC 6761: example.com/.net/.org, .example, .test, .invalid, .localhost) and
the starter's `example-org` owner belong to nobody: Argo CD cannot clone them, no registry serves them,
and no certificate can be issued for them.
"""

from __future__ import annotations

import re
from typing import Iterator
from urllib.parse import urlsplit

from gitops_tool.config import Config
from gitops_tool.validate.findings import WARNING, Finding

RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
RESERVED_TLDS = ("example", "test", "invalid", "localhost")
PLACEHOLDER_OWNERS = ("example-org",)
_SCP_LIKE = re.compile(r"^[\w.-]+@(?P<host>[\w.-]+):(?P<path>.*)$")  # git@github.com:owner/repo.git


def reserved_host(host: str) -> bool:
    host = host.lower().rstrip(".").split(":")[0]
    if any(host == d or host.endswith("." + d) for d in RESERVED_DOMAINS):
        return True
    return "." in host and host.rsplit(".", 1)[1] in RESERVED_TLDS


def _why(host: str, path: str) -> str | None:
    if reserved_host(host):
        return f"{host.split(':')[0]} is a reserved example domain nobody owns"
    owners = [part for part in path.strip("/").split("/") if part in PLACEHOLDER_OWNERS]
    return f"'{owners[0]}' is the starter's placeholder owner" if owners else None


def _url_problem(url: str) -> str | None:
    scp = _SCP_LIKE.match(url)
    if scp:
        return _why(scp["host"], scp["path"])
    parts = urlsplit(url)
    return _why(parts.hostname or "", parts.path) if parts.hostname else None


def _image_problem(image: str) -> str | None:
    first, _, rest = image.partition("/")
    host = first if ("." in first or ":" in first) and rest else "docker.io"
    return _why(host, rest if host == first else image)


def _values(cfg: Config) -> Iterator[tuple[str, str, str | None]]:
    """(field, value, problem) for every value that names a place outside the cluster."""
    yield "repo.url", cfg.repo_url, _url_problem(cfg.repo_url)
    for name, image in sorted(cfg.images.items()):
        yield f"images.{name}", image, _image_problem(image)
    for name, model in cfg.models.items():
        if model.image_repository:
            yield f"models.{name}.image_repository", model.image_repository, _image_problem(model.image_repository)
    for name, inst in cfg.platform.items():
        yield f"platform.instances.{name}.host", inst.host, _why(inst.host, "")
    for name, server in sorted(cfg.clusters.items()):
        yield f"argocd.clusters.{name}", server, _url_problem(server)
    repository = (cfg.receiver or {}).get("github_repository")
    if repository:
        yield "platform.receiver.github_repository", repository, _why("github.com", repository)


def placeholder_findings(cfg: Config) -> list[Finding]:
    return [Finding("config", "gitops.yaml", cfg.project, field,
                    f"{value!r} is a placeholder ({problem}); put the real value in {cfg.source}", WARNING)
            for field, value, problem in _values(cfg) if problem]
