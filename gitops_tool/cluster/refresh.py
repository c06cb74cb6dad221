"""Fast sync: after a push, ask Argo CD to refresh the environment's Application now.

Without it Argo CD notices the commit on its next poll (3 minutes by default), so alias ->
serving is bounded by the poll, not by the sync. gitops.yaml `argocd.refresh` picks how:

- `annotation` (default): patch `argocd.argoproj.io/refresh: normal` onto the Application
  through the kubernetes client (the kubeconfig's current context, or in-cluster credentials);
  Argo CD's controller refreshes it and removes the annotation. Where there are no cluster
  credentials at all (a laptop without kubeconfig, a CI job, the receiver whose pod mounts no
  token) the step is skipped, not failed.
- `api`: `GET {argocd.api_url}/api/v1/applications/<name>?refresh=normal` (what `argocd app get
  --refresh` sends) with the token in $ARGOCD_AUTH_TOKEN.
- `none`: nothing; Argo CD's poll (or its own webhook from the forge) picks the commit up.

A refresh never fails a promotion: the commit is pushed already. A failure is logged, counted
(gitops_argocd_refresh_failures_total on the receiver) and reported as the step's status.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from gitops_tool.errors import GitopsError

MODES = ("annotation", "api", "none")
ANNOTATION = "argocd.argoproj.io/refresh"
TOKEN_ENV = "ARGOCD_AUTH_TOKEN"
TIMEOUT = 5.0
SA_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")

log = logging.getLogger("gitops_tool.promotion.refresh")
log.addHandler(logging.NullHandler())
_lock = threading.Lock()
_counts = {"requested": 0, "failures": 0}


def counts() -> dict[str, int]:
    with _lock:
        return dict(_counts)


def app_name(cfg, env: str) -> str:
    return f"{cfg.project}-{env}"


def request_refresh(cfg, env: str) -> tuple[str, str]:
    """(status, detail): ok, skipped or failed. Never raises."""
    settings = cfg.argocd_refresh
    mode, name = settings.get("mode", "annotation"), app_name(cfg, env)
    if mode == "none":
        return "skipped", "argocd.refresh: none"
    try:
        if mode == "api":
            detail = _by_api(settings.get("api_url"), name, cfg.argocd_namespace)
        else:
            if (why := _no_credentials()) is not None:
                return "skipped", f"no cluster credentials ({why}); Argo CD's poll picks the commit up"
            detail = _by_annotation(name, cfg.argocd_namespace)
    except Exception as exc:  # noqa: BLE001 - by contract: the push is done, a refresh never fails it
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        with _lock:
            _counts["failures"] += 1
        log.warning("Argo CD refresh of %s failed (%s): %s", name, mode, reason)
        return "failed", f"{mode}: {reason}"
    with _lock:
        _counts["requested"] += 1
    return "ok", detail


def _no_credentials() -> str | None:
    path = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    if any(Path(p).is_file() for p in path.split(os.pathsep) if p):
        return None
    if os.environ.get("KUBERNETES_SERVICE_HOST") and SA_TOKEN.is_file():
        return None
    return f"no kubeconfig at {path}, no service account token"


def _by_annotation(name: str, namespace: str) -> str:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from gitops_tool.cluster.api import TIMEOUT as API_TIMEOUT
    from gitops_tool.cluster.api import connect

    reader = connect()
    body = {"metadata": {"annotations": {ANNOTATION: "normal"}}}
    try:
        reader.api.patch_namespaced_custom_object("argoproj.io", "v1alpha1", namespace, "applications", name, body,
                                                  _request_timeout=API_TIMEOUT)
    except ApiException as exc:
        raise GitopsError(f"PATCH Application {namespace}/{name} at {reader.where} answered HTTP {exc.status} "
                          f"{exc.reason}") from None
    except HTTPError as exc:
        raise GitopsError(f"cannot reach the cluster API at {reader.where}: {exc}") from None
    return f"annotated {namespace}/{name} {ANNOTATION}=normal"


def _by_api(api_url: str | None, name: str, namespace: str) -> str:
    import requests

    token = os.environ.get(TOKEN_ENV, "").strip()
    if not api_url:
        raise GitopsError("argocd.refresh: api needs argocd.api_url")
    if not token:
        raise GitopsError(f"argocd.refresh: api needs the Argo CD token in ${TOKEN_ENV}")
    url = f"{api_url.rstrip('/')}/api/v1/applications/{name}"
    try:
        resp = requests.get(url, params={"refresh": "normal", "appNamespace": namespace},
                            headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise GitopsError(f"GET {url}: {type(exc).__name__}") from None
    if resp.status_code != 200:
        raise GitopsError(f"GET {url}?refresh=normal answered HTTP {resp.status_code}")
    return f"GET {url}?refresh=normal: 200"
