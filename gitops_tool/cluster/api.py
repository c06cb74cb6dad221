"""A small reader over the kubernetes client's CustomObjectsApi: kubeconfig or in-cluster config."""

from __future__ import annotations

import os
from pathlib import Path

from gitops_tool.errors import GitopsError

TIMEOUT = 10.0  # seconds per API request


class ClusterReader:
    """GET one custom object; None when the API answers 404."""

    def __init__(self, api_client, where: str):
        from kubernetes import client

        self.api = client.CustomObjectsApi(api_client)
        self.where = where

    def get(self, group: str, version: str, namespace: str, plural: str, name: str) -> dict | None:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return self.api.get_namespaced_custom_object(group, version, namespace, plural, name,
                                                         _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return None
            hint = {401: "the credentials in the kubeconfig were refused",
                    403: f"the user may not get {plural}.{group} in namespace {namespace}"}.get(exc.status)
            raise GitopsError(f"cluster API {self.where}: GET {plural}/{name} in {namespace} answered "
                              f"HTTP {exc.status} {exc.reason}", hint=hint) from None
        except HTTPError as exc:
            raise GitopsError(f"cannot reach the cluster API at {self.where}: {exc}",
                              retryable=True) from None


def connect(context: str | None = None, kubeconfig: str | None = None) -> ClusterReader:
    """The kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) if there is one, else in-cluster."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    path = kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    configuration = client.Configuration()
    configuration.retries = 1  # wait polls; a failed read is retried by the next poll
    try:
        if any(Path(p).is_file() for p in path.split(os.pathsep) if p):
            config.load_kube_config(config_file=path, context=context, client_configuration=configuration,
                                    persist_config=False)
        elif context:
            raise GitopsError(f"--context {context}: no kubeconfig at {path}")
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
        else:
            raise GitopsError(f"no kubeconfig at {path} and not running in a cluster",
                              hint="pass --kubeconfig FILE or set KUBECONFIG")
    except ConfigException as exc:
        raise GitopsError(f"kubeconfig {path}: {exc}") from None
    return ClusterReader(client.ApiClient(configuration), configuration.host)
