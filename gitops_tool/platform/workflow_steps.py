"""Steps the generated workflows share: pinned actions, the checkout, installing gitops-tool.

The workflows run in a team's own GitOps repository, which has gitops.yaml and the generated tree but no
pyproject.toml and no tests: nothing here may need more than that. gitops-tool comes from gitops.yaml
(`tool.package`, a pip requirement), installed into a virtualenv that actions/cache keeps between runs
(the reconcile schedule would otherwise install it thousands of times a month), or the jobs run in the
published image (`tool.run: image`).
"""

from __future__ import annotations

import hashlib
import re

from gitops_tool.config import Config

# Release commits (every one runs on node24), checked against the actions' own tags.
CHECKOUT = ("actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd", "v6.0.2")
SETUP_PYTHON = ("actions/setup-python@a309ff8b426b58ec0e2a45f0f869d46889d02405", "v6.2.0")
CACHE = ("actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae", "v5.0.5")
DOCKER_LOGIN = ("docker/login-action@4907a6ddec9925e35a0a9e82d7399ccc52663121", "v4.1.0")
KIND_ACTION = ("helm/kind-action@ef37e7f390d99f746eb8b610417061a60e82a6cc", "v1.14.0")
KIND_VERSION = "v0.27.0"      # its default node image is kindest/node:v1.32.2
KUBECTL_VERSION = "v1.32.2"
PYTHON = "3.11"
RUNNER = "ubuntu-24.04"
TOOL_VENV = "~/.cache/gitops-tool-venv"  # the cached virtualenv (the same home on every hosted runner)

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"

INSTALL_SCRIPT = """\
set -euo pipefail
venv="${VENV/#\\~/$HOME}"
# A cache hit already has this spec installed; a local checkout ('.') is reinstalled, its code changes.
if [ ! -x "$venv/bin/gitops-tool" ] || [ "$REINSTALL" = "1" ]; then
  python -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$SPEC"
fi
echo "$venv/bin" >>"$GITHUB_PATH"
"$venv/bin/gitops-tool" --version
"""

_NAME = re.compile(r"^(gitops[-_]tool)(\[[^\]]*\])?(.*)$", re.IGNORECASE)


def uses(action: tuple[str, str], what: str, with_: dict | None = None) -> dict:
    step: dict = {"name": f"{what} ({action[0].split('@')[0]} {action[1]})", "uses": action[0]}
    if with_:
        step["with"] = with_
    return step


def checkout(cfg: Config | None = None, *, history: bool = False, **with_: object) -> dict:
    """The branch tip (not the event's commit) when `cfg` is given; full history when `history`."""
    options = dict(with_)
    if cfg is not None:
        # A repository_dispatch run would otherwise start from the commit current when the event was sent.
        options["ref"] = cfg.branch
    if history:
        options["fetch-depth"] = 0  # gates and history read past commits; the default depth is 1
    return uses(CHECKOUT, "Check out", options or None)


def is_local(spec: str) -> bool:
    """`.` (or another path): the repository is gitops-tool's own checkout."""
    return spec == "." or spec.startswith(("./", "../", "/"))


def with_extras(spec: str, extras: str) -> str:
    """The same requirement with extras: gitops-tool[x]==1.2, .[x], gitops-tool[x] @ git+https://..."""
    if not extras:
        return spec
    if is_local(spec) or spec.endswith((".whl", ".tar.gz")):
        return f"{spec}[{extras}]"
    match = _NAME.match(spec)
    if match and "://" not in spec:
        return f"{match.group(1)}[{extras}]{match.group(3)}"
    return f"gitops-tool[{extras}] @ {spec}"


def package(cfg: Config) -> str:
    return cfg.tool["package"]


def in_image(cfg: Config) -> bool:
    return cfg.tool.get("run") == "image"


def container(cfg: Config) -> dict:
    """Job-level `container:` for tool.run: image (root: checkout writes the runner-owned workspace)."""
    return {"container": {"image": cfg.images["gitops_tool"], "options": "--user root"}} if in_image(cfg) else {}


def install_tool(cfg: Config, extras: str = "", *, force_pip: bool = False) -> list[dict]:
    """Python and gitops-tool from gitops.yaml, cached by the requirement; nothing when the job runs in the image."""
    if in_image(cfg) and not force_pip:
        return []
    spec = with_extras(package(cfg), extras)
    key = f"gitops-tool-venv-{RUNNER}-py{PYTHON}-{hashlib.sha256(spec.encode()).hexdigest()[:16]}"
    if is_local(package(cfg)):
        key += "-${{ hashFiles('pyproject.toml') }}"  # new dependencies, new virtualenv
    return [
        uses(SETUP_PYTHON, "Set up Python", {"python-version": PYTHON}),
        uses(CACHE, "Cache the gitops-tool virtualenv", {"path": TOOL_VENV, "key": key}),
        {"name": "Install gitops-tool",
         "env": {"SPEC": spec, "VENV": TOOL_VENV, "REINSTALL": "1" if is_local(package(cfg)) else "0"},
         "run": INSTALL_SCRIPT},
    ]


def git_identity() -> dict:
    return {"name": "Git identity for commits",
            "run": f'set -euo pipefail\ngit config user.name "{BOT_NAME}"\ngit config user.email "{BOT_EMAIL}"\n'}


# bash as `bash --noprofile --norc -eo pipefail {0}` on every step; a container job would default to sh.
DEFAULTS = {"defaults": {"run": {"shell": "bash"}}}
