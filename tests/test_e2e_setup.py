"""The kind end-to-end run installs every CRD the platform renders (issue 14, 2.1: it left out
PrometheusRule, so the Argo CD sync could never succeed). Real generate and real kustomize; the kind
run itself needs Docker and GitHub, so only its setup list is checked here."""

from __future__ import annotations

from pathlib import Path

from gitops_tool.project import generate
from tests.conftest import render_docs
from tests.e2e import test_kind

ARGO_CD_INSTALLS = {"argoproj.io"}  # Argo CD's install.yaml brings its own CRDs


def _crd_kinds(docs: list[dict]) -> set[tuple[str, str]]:
    """(group, kind) of custom resources: a group with a dot that is not a Kubernetes API group."""
    kinds = set()
    for doc in docs:
        group = doc["apiVersion"].rpartition("/")[0]
        if "." in group and not group.endswith(".k8s.io") and group not in ARGO_CD_INSTALLS:
            kinds.add((group, doc["kind"]))
    return kinds


def test_every_rendered_crd_kind_is_installed_by_the_e2e_run(tmp_path: Path):
    (tmp_path / "gitops.yaml").write_text(test_kind.e2e_config("http://127.0.0.1:1/platform.git"))
    generate(tmp_path / "gitops.yaml")
    kinds = _crd_kinds(render_docs(tmp_path / "environments" / test_kind.ENV))
    kinds |= _crd_kinds(render_docs(tmp_path / "environments" / "platform" / test_kind.PLATFORM))
    kinds |= _crd_kinds(render_docs(tmp_path / "argocd"))
    assert ("monitoring.coreos.com", "PrometheusRule") in kinds  # the one that was missing
    installed = {url.rsplit("/", 1)[1] for url in test_kind.CRDS}
    missing = sorted(f"{g}/{k}" for g, k in kinds if f"{g}_{k.lower()}s.yaml" not in installed)
    assert missing == [], f"the e2e run installs no CRD for {missing}"
