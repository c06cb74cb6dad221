"""Is an environment's Git state live? Argo CD's Application and KServe's InferenceServices say.

Live means: the Application `<project>-<env>` is Synced and Healthy at a revision that is (or
contains) the latest commit touching environments/<env> in the local checkout, and every model
the env serves has a Ready InferenceService annotated with the expected version.

The reader talks to the cluster Argo CD runs on. A serving environment on another cluster is
seen through its Application's status.resources: the InferenceService's health there, and its
version only as "applied" when the Application is Synced at a revision containing the promotion.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gitops_tool.cluster.api import ClusterReader
from gitops_tool.config import Config
from gitops_tool.config.model import IN_CLUSTER
from gitops_tool.errors import GitopsError
from gitops_tool.kustomize.release import VERSION_ANNOTATION, read_release

ARGO = ("argoproj.io", "v1alpha1", "applications")
KSERVE = ("serving.kserve.io", "v1beta1", "inferenceservices")


@dataclass
class AppState:
    name: str
    found: bool
    sync: str | None = None
    health: str | None = None
    revision: str | None = None
    message: str | None = None  # the last operation's message, when it failed
    # InferenceService name -> Argo CD's health status of it (how a remote cluster's models are seen)
    isvc_health: dict[str, str] = field(default_factory=dict)


@dataclass
class IsvcState:
    name: str
    found: bool
    ready: str | None = None          # the Ready condition's status: True / False / Unknown
    reason: str | None = None
    version: str | None = None        # the gitops-tool.io/model-version annotation
    image: str | None = None          # predictor image or storageUri
    stale: bool = False               # status describes an older generation of the spec


@dataclass
class EnvLive:
    env: str
    namespace: str
    git_revision: str | None
    app: AppState
    isvcs: dict[str, IsvcState] = field(default_factory=dict)
    expected: dict[str, str | None] = field(default_factory=dict)  # model -> version wanted
    revision_live: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return asdict(self) | {"live": self.live}


def read_app(reader: ClusterReader, cfg: Config, env: str) -> AppState:
    name = f"{cfg.project}-{env}"
    doc = reader.get(ARGO[0], ARGO[1], cfg.argocd_namespace, ARGO[2], name)
    if doc is None:
        return AppState(name, found=False)
    status = doc.get("status") or {}
    op = status.get("operationState") or {}
    isvc_health = {r.get("name"): (r.get("health") or {}).get("status") for r in status.get("resources") or []
                   if r.get("kind") == "InferenceService"}
    return AppState(name, True, sync=(status.get("sync") or {}).get("status"),
                    health=(status.get("health") or {}).get("status"),
                    revision=(status.get("sync") or {}).get("revision"),
                    message=op.get("message") if op.get("phase") in ("Failed", "Error") else None,
                    isvc_health=isvc_health)


def isvc_from_app(app: AppState, name: str, version: str | None, *, applied: bool) -> IsvcState:
    """A model on another cluster than Argo CD's: its health as Argo CD reports it.

    The version annotation is not in the Application's status. ``applied``: the Application is
    Synced at a revision that contains the latest commit in environments/<env> (checked by the
    caller), so it has applied the version Git deploys; otherwise the version is unknown.
    """
    if name not in app.isvc_health:
        return IsvcState(name, found=False)
    healthy = app.isvc_health[name] == "Healthy"
    return IsvcState(name, True, ready="True" if healthy else "False",
                     reason=None if healthy else f"Argo CD health {app.isvc_health[name] or 'unknown'}",
                     version=version if applied and app.sync == "Synced" else None)


def read_isvc(reader: ClusterReader, namespace: str, name: str) -> IsvcState:
    doc = reader.get(KSERVE[0], KSERVE[1], namespace, KSERVE[2], name)
    if doc is None:
        return IsvcState(name, found=False)
    meta, status = doc.get("metadata") or {}, doc.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    predictor = (doc.get("spec") or {}).get("predictor") or {}
    containers = predictor.get("containers") or [{}]
    image = containers[0].get("image") or (predictor.get("model") or {}).get("storageUri")
    observed, generation = status.get("observedGeneration"), meta.get("generation")
    return IsvcState(name, True, ready=ready.get("status"), reason=ready.get("reason") or ready.get("message"),
                     version=(meta.get("annotations") or {}).get(VERSION_ANNOTATION), image=image,
                     stale=bool(observed and generation and observed < generation))


def latest_env_commit(root: Path, env: str) -> str | None:
    """The sha of the newest commit touching environments/<env> (promotions, rollbacks, generate)."""
    res = _git(root, "log", "-1", "--format=%H", "--", f"environments/{env}")
    if res.returncode != 0:
        raise GitopsError(f"{root}: cannot read the Git history: {res.stderr.strip()}")
    return res.stdout.strip() or None


def contains(root: Path, revision: str, commit: str) -> bool | None:
    """Whether ``revision`` is ``commit`` or a descendant; None when this checkout lacks it."""
    if revision == commit:
        return True
    if _git(root, "cat-file", "-e", f"{revision}^{{commit}}").returncode != 0:
        return None
    return _git(root, "merge-base", "--is-ancestor", commit, revision).returncode == 0


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)


def expected_versions(cfg: Config, env: str, model: str | None, version: str | None) -> dict[str, str | None]:
    """model -> version to wait for: --version for the chosen model, else what Git deploys."""
    released = read_release(cfg.env_dir(env))
    wanted = {name: state.version for name, state in released.items()}
    if model is not None:
        name = cfg.model(model).name
        wanted = {name: wanted.get(name)}
    if version is not None:
        if len(wanted) != 1:
            raise GitopsError(f"--version needs --model: {env} serves {', '.join(wanted) or 'no model'}")
        wanted = {name: version for name in wanted}
    return wanted


def check_env(reader: ClusterReader, cfg: Config, env: str, wanted: dict[str, str | None]) -> EnvLive:
    """One look at the cluster; ``problems`` names everything that is not live yet."""
    namespace, cluster = cfg.env(env).namespace, cfg.env(env).cluster
    state = EnvLive(env, namespace, latest_env_commit(cfg.root, env), read_app(reader, cfg, env), expected=wanted)
    app = state.app
    if not app.found:
        state.problems.append(f"Argo CD Application {cfg.argocd_namespace}/{app.name} not found "
                              "(is argocd/ applied, and is this the right --context?)")
        return state
    if app.sync != "Synced":
        state.problems.append(f"Application {app.name} is {app.sync or 'not'} synced"
                              + (f": {app.message}" if app.message else ""))
    if app.health != "Healthy":
        state.problems.append(f"Application {app.name} health is {app.health or 'unknown'}")
    _check_revision(state, cfg.root)
    remote = cluster.name != IN_CLUSTER  # the reader talks to Argo CD's cluster, not this one
    for name, version in wanted.items():
        if remote:
            isvc = isvc_from_app(app, name, version, applied=state.revision_live)
            where = f"InferenceService {namespace}/{name} on cluster {cluster.name} (as Argo CD reports it)"
        else:
            isvc = read_isvc(reader, namespace, name)
            where = f"InferenceService {namespace}/{name}"
        state.isvcs[name] = isvc
        state.problems += _isvc_problems(isvc, where, version, remote=remote)
    return state


def _check_revision(state: EnvLive, root: Path) -> None:
    want, have = state.git_revision, state.app.revision
    if want is None:
        state.revision_live = True
        return
    found = contains(root, have, want) if have else False
    state.revision_live = bool(found)
    if found is None:
        state.problems.append(f"Application {state.app.name} is at {have[:12]}, a commit this checkout does not "
                              f"have (git fetch?); want {want[:12]} or later")
    elif not found:
        state.problems.append(f"Application {state.app.name} is at revision {(have or 'none')[:12]}, "
                              f"not yet {want[:12]} (latest commit in environments/{state.env})")


def _isvc_problems(isvc: IsvcState, where: str, version: str | None, *, remote: bool = False) -> list[str]:
    if not isvc.found:
        return [f"{where} not found" + (" in the Application's resources" if remote else "")]
    problems = []
    if version is not None and isvc.version != version:
        problems.append(f"{where} has not applied version {version} yet" if remote else
                        f"{where} is annotated version {isvc.version or 'none'}, want {version}")
    if isvc.stale:
        problems.append(f"{where} status is for an older spec (KServe has not reconciled it yet)")
    if isvc.ready != "True":
        problems.append(f"{where} is not Ready ({isvc.ready or 'no Ready condition'}"
                        + (f": {isvc.reason}" if isvc.reason else "") + ")")
    return problems
