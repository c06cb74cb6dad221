"""`gitops-tool doctor`: what each cluster must provide for the generated platform, and a live check.

Offline, `requirements(cfg)` lists, per cluster gitops.yaml names, the controllers and CRDs the
rendered manifests rely on (only those this config uses: ESO only if a Secret is `external`,
Knative only for a Serverless environment, cert-manager only with an issuer...). `check(...)`
asks one cluster's API for each, through the kubernetes client.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gitops_tool.config import Config
from gitops_tool.errors import GitopsError
from gitops_tool.platform.secrets import by_method


@dataclass(frozen=True)
class Check:
    """One thing to ask the API: a CRD serving a version, a namespace, pods, a named object..."""
    kind: str                     # crd | namespace | pods | ingressclass | object | prometheus
    name: str
    version: str = ""             # crd: the API version that must be served
    namespace: str = ""
    labels: dict = field(default_factory=dict, hash=False, compare=False)
    group: str = ""               # object: group/version/plural
    plural: str = ""

    def describe(self) -> str:
        if self.kind == "crd":
            return f"CRD {self.name} serving {self.version}"
        if self.kind == "pods":
            return f"running pods {_selector(self.labels)} in namespace {self.namespace}"
        if self.kind == "prometheus":
            return f"a Prometheus in {self.namespace} selecting ServiceMonitors/PrometheusRules by {_selector(self.labels)}"
        if self.kind == "object":
            where = f" in {self.namespace}" if self.namespace else ""
            return f"{self.plural}.{self.group.split('/')[0]} {self.name}{where}"
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Requirement:
    what: str
    minimum: str
    needed_for: str
    clusters: tuple[str, ...]
    checks: tuple[Check, ...]


def _selector(labels: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())


def _crd(plural_group: str, version: str) -> Check:
    return Check("crd", plural_group, version=version)


def requirements(cfg: Config) -> list[Requirement]:
    platform = tuple(sorted({p.cluster.name for p in cfg.platform.values()}))
    serving = tuple(sorted({e.cluster.name for e in cfg.environments.values()}))
    every = tuple(sorted(set(platform) | set(serving)))
    net = cfg.network
    out = [
        Requirement("Argo CD", "2.x (SkipDryRunOnMissingResource, sync waves, hooks)",
                    "syncs every Application from argocd/", ("in-cluster",),
                    (Check("namespace", cfg.argocd_namespace), _crd("applications.argoproj.io", "v1alpha1"),
                     _crd("appprojects.argoproj.io", "v1alpha1"))),
        Requirement("ingress-nginx", "an IngressClass named nginx",
                    "the MLflow Ingress (basic auth annotations) and the NetworkPolicies that admit it", every,
                    (Check("ingressclass", "nginx"),
                     Check("pods", "ingress controller", namespace=net["ingress_namespace"],
                           labels=dict(net["ingress_pod_labels"])))),
        Requirement("Prometheus Operator", "monitoring.coreos.com/v1",
                    "ServiceMonitors, PodMonitor and the PrometheusRule (scraped only if selected)", every,
                    (_crd("servicemonitors.monitoring.coreos.com", "v1"), _crd("prometheusrules.monitoring.coreos.com", "v1"),
                     _crd("podmonitors.monitoring.coreos.com", "v1"),
                     Check("prometheus", "prometheus", namespace=net["monitoring_namespace"],
                           labels=dict(net["prometheus_selector"])),
                     Check("pods", "Prometheus", namespace=net["monitoring_namespace"],
                           labels=dict(net["prometheus_pod_labels"])))),
        Requirement("KServe", "serving.kserve.io/v1beta1; deploymentMode Standard (older KServe: RawDeployment)",
                    "the InferenceServices of promoted models", serving,
                    (_crd("inferenceservices.serving.kserve.io", "v1beta1"),)),
    ]
    modes = {e.serving.mode for e in cfg.environments.values()}
    if "Serverless" in modes:
        clusters = tuple(sorted({e.cluster.name for e in cfg.environments.values() if e.serving.mode == "Serverless"}))
        out.append(Requirement("Knative Serving", "serving.knative.dev/v1", "KServe Serverless mode (scale to zero)",
                               clusters, (_crd("services.serving.knative.dev", "v1"),
                                          *(Check("namespace", ns) for ns in net["knative_namespaces"]))))
    if any(m.mode == "storage" for m in cfg.models.values()):
        out.append(Requirement("KServe MLflow runtime", "ClusterServingRuntime kserve-mlserver",
                               "storage-mode models (MLServer, V2 protocol)", serving,
                               (Check("object", "kserve-mlserver", group="serving.kserve.io/v1alpha1",
                                      plural="clusterservingruntimes"),)))
    out += _secret_requirements(cfg) + _cert_requirements(cfg)
    return out


def _secret_requirements(cfg: Config) -> list[Requirement]:
    out = []
    methods = {t.label: by_method(cfg, t) for t in cfg.targets()}
    external = [t for t in cfg.targets() if methods[t.label]["external"]]
    if external:
        stores = {(t.secrets["store_kind"], t.secrets["store"], t.namespace) for t in external}
        checks = [_crd("externalsecrets.external-secrets.io", "v1")]
        for kind, name, ns in sorted(stores):
            plural = "clustersecretstores" if kind == "ClusterSecretStore" else "secretstores"
            checks.append(Check("object", name, group="external-secrets.io/v1", plural=plural,
                                namespace="" if kind == "ClusterSecretStore" else ns))
        out.append(Requirement("External Secrets Operator", "external-secrets.io/v1",
                               f"ExternalSecrets of {', '.join(t.label for t in external)}",
                               tuple(sorted({t.cluster.name for t in external})), tuple(checks)))
    sealed = [t for t in cfg.targets() if methods[t.label]["sealed"]]
    if sealed:
        out.append(Requirement("sealed-secrets controller", "bitnami.com/v1alpha1",
                               f"SealedSecrets of {', '.join(t.label for t in sealed)}",
                               tuple(sorted({t.cluster.name for t in sealed})),
                               (_crd("sealedsecrets.bitnami.com", "v1alpha1"),)))
    return out


def _cert_requirements(cfg: Config) -> list[Requirement]:
    issued = [p for p in cfg.platform.values() if p.tls_enabled and (p.tls_cluster_issuer or p.tls_issuer)]
    if not issued:
        return []
    checks = [_crd("certificates.cert-manager.io", "v1")]
    for p in issued:
        if p.tls_cluster_issuer:
            checks.append(Check("object", p.tls_cluster_issuer, group="cert-manager.io/v1", plural="clusterissuers"))
        else:
            checks.append(Check("object", p.tls_issuer, group="cert-manager.io/v1", plural="issuers",
                                namespace=p.namespace))
    return [Requirement("cert-manager", "cert-manager.io/v1", "issues the Ingress TLS Secret of "
                        + ", ".join(p.label for p in issued), tuple(sorted({p.cluster.name for p in issued})),
                        tuple(checks))]


# --- live checks --------------------------------------------------------------------------------

def check(reader, cfg: Config, cluster: str) -> list[tuple[Requirement, Check, str | None]]:
    """Each check of the requirements for `cluster`: (requirement, check, None if ok else the problem)."""
    if cluster not in cfg.clusters:
        raise GitopsError(f"{cfg.source}: no cluster {cluster!r} (known: {', '.join(cfg.clusters)})")
    api = _Apis(reader.api.api_client, reader.where)
    return [(req, c, api.problem(c)) for req in requirements(cfg) if cluster in req.clusters for c in req.checks]


class _Apis:
    def __init__(self, api_client, where: str) -> None:
        from kubernetes import client

        self.ext = client.ApiextensionsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.networking = client.NetworkingV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.where = where

    def problem(self, c: Check) -> str | None:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return getattr(self, f"_{c.kind}")(c)
        except ApiException as exc:
            if exc.status == 404:
                return "not found"
            return f"HTTP {exc.status} {exc.reason}"
        except HTTPError as exc:
            raise GitopsError(f"cannot reach the cluster API at {self.where}: {exc}", retryable=True) from None

    def _crd(self, c: Check) -> str | None:
        crd = self.ext.read_custom_resource_definition(c.name, _request_timeout=10)
        served = [v.name for v in crd.spec.versions if v.served]
        return None if c.version in served else f"serves {', '.join(served) or 'nothing'}, not {c.version}"

    def _namespace(self, c: Check) -> str | None:
        self.core.read_namespace(c.name, _request_timeout=10)
        return None

    def _ingressclass(self, c: Check) -> str | None:
        self.networking.read_ingress_class(c.name, _request_timeout=10)
        return None

    def _pods(self, c: Check) -> str | None:
        pods = self.core.list_namespaced_pod(c.namespace, label_selector=_selector(c.labels), _request_timeout=10)
        running = [p for p in pods.items if p.status and p.status.phase == "Running"]
        return None if running else f"no running pod matches {_selector(c.labels)} (set network.* in gitops.yaml)"

    def _object(self, c: Check) -> str | None:
        group, version = c.group.split("/")
        if c.namespace:
            self.custom.get_namespaced_custom_object(group, version, c.namespace, c.plural, c.name, _request_timeout=10)
        else:
            self.custom.get_cluster_custom_object(group, version, c.plural, c.name, _request_timeout=10)
        return None

    def _prometheus(self, c: Check) -> str | None:
        found = self.custom.list_namespaced_custom_object("monitoring.coreos.com", "v1", c.namespace, "prometheuses",
                                                          _request_timeout=10)
        from gitops_tool.platform.netpol import selector_matches

        for prom in found.get("items", []):
            spec = prom.get("spec", {})
            selectors = [spec.get("serviceMonitorSelector"), spec.get("ruleSelector")]
            if all(s is not None and selector_matches(s, c.labels) for s in selectors):
                return None
        names = ", ".join(p["metadata"]["name"] for p in found.get("items", [])) or "none"
        return (f"no Prometheus selects labels {_selector(c.labels)} for both ServiceMonitors and rules "
                f"(found: {names}); set network.prometheus_selector")
