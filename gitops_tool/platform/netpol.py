"""Evaluate Kubernetes NetworkPolicies the way a conforming CNI does, over rendered manifests.

A connection from pod A to pod B on a port is allowed when A's egress allows it and B's ingress
allows it. For each direction: if no policy of that type selects the pod, everything is allowed;
otherwise at least one rule of a selecting policy must match the peer and the port. A peer's
`podSelector` alone means pods in the policy's own namespace; `namespaceSelector` alone means
every pod in the matching namespaces; both together means matching pods in matching namespaces.
ipBlock peers are not modelled (the platform's policies use none), so they never match a pod.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pod:
    """A pod as policies see it: its namespace (with that namespace's labels), labels and named ports."""
    name: str
    namespace: str
    labels: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    namespace_labels: dict[str, str] | None = None

    @property
    def ns_labels(self) -> dict[str, str]:
        # The API server sets kubernetes.io/metadata.name on every namespace (1.21+).
        return (self.namespace_labels or {}) | {"kubernetes.io/metadata.name": self.namespace}


def selector_matches(selector: dict | None, labels: dict[str, str]) -> bool:
    """A LabelSelector: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist). {} matches all."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {"In": key in labels and labels[key] in values,
              "NotIn": key not in labels or labels[key] not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}.get(op)
        if ok is None:
            raise ValueError(f"unknown selector operator {op!r}")
        if not ok:
            return False
    return True


def _peer_matches(peer: dict, pod: Pod, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], pod.ns_labels):
            return False
    elif pod.namespace != policy_namespace:
        return False
    return selector_matches(peer.get("podSelector", {}), pod.labels)


def _port_matches(ports: list[dict] | None, port: int, target: Pod, protocol: str) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        want = entry.get("port")
        if want is None:
            return True
        number = target.ports.get(want) if isinstance(want, str) else want
        end = entry.get("endPort", number)
        if number is not None and number <= port <= end:
            return True
    return False


def _types(policy: dict) -> list[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return spec["policyTypes"]
    return ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]


def _selecting(policies: list[dict], pod: Pod, kind: str) -> list[dict]:
    return [p for p in policies
            if p["metadata"].get("namespace") == pod.namespace and kind in _types(p)
            and selector_matches(p["spec"].get("podSelector", {}), pod.labels)]


def _direction_allows(policies: list[dict], subject: Pod, peer: Pod, port: int, protocol: str, kind: str) -> bool:
    selecting = _selecting(policies, subject, kind)
    if not selecting:
        return True
    rules_key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    port_owner = subject if kind == "Ingress" else peer
    for policy in selecting:
        for rule in policy["spec"].get(rules_key) or []:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(_peer_matches(p, peer, policy["metadata"]["namespace"]) for p in peers)
            if peer_ok and _port_matches(rule.get("ports"), port, port_owner, protocol):
                return True
    return False


def allowed(policies: list[dict], src: Pod, dst: Pod, port: int | str, protocol: str = "TCP") -> bool:
    """Whether src may open a connection to dst's port (a number, or one of dst's named ports)."""
    number = dst.ports[port] if isinstance(port, str) else port
    return (_direction_allows(policies, src, dst, number, protocol, "Egress")
            and _direction_allows(policies, dst, src, number, protocol, "Ingress"))


def policies_in(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d.get("kind") == "NetworkPolicy"]


def workload_pods(docs: list[dict]) -> dict[str, Pod]:
    """The pods each rendered Deployment, StatefulSet and Job would create, by workload name."""
    pods = {}
    for doc in docs:
        if doc.get("kind") not in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
            continue
        template = doc["spec"]["template"]
        ports = {p["name"]: p["containerPort"] for c in template["spec"].get("containers", [])
                 for p in c.get("ports", []) if "name" in p}
        name = doc["metadata"]["name"]
        pods[name] = Pod(name, doc["metadata"]["namespace"], dict(template["metadata"].get("labels", {})), ports)
    return pods
