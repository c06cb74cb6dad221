"""argocd.refresh: api in the generated platform: the receiver's token Secret, rendered with the real
kustomize and validated against the upstream schemas (../shared/schemas). No stand-in."""

from __future__ import annotations

from pathlib import Path

from gitops_tool.project import generate
from tests.conftest import find, render_docs, run_cli


def test_refresh_api_gives_the_generated_receiver_its_argocd_token(project: Path, schema_dir: Path):
    """argocd.refresh: api: the receiver reads $ARGOCD_AUTH_TOKEN from a Secret the secrets operator provides."""
    config = project / "gitops.yaml"
    config.write_text(config.read_text().replace(
        "argocd:\n", "argocd:\n  refresh: api\n  api_url: https://argocd.example.com\n", 1))
    generate(config)
    docs = render_docs(project / "environments/platform/main")
    receiver = find(docs, "Deployment", "gitops-webhook")["spec"]["template"]["spec"]["containers"][0]
    token = next(e for e in receiver["env"] if e["name"] == "ARGOCD_AUTH_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "gitops-argocd-token", "key": "token"}
    find(docs, "ExternalSecret", "gitops-argocd-token")
    res = run_cli("secrets", "list", cwd=project)
    assert res.returncode == 0 and "gitops-argocd-token" in res.stdout, res.stdout + res.stderr
    res = run_cli("validate", "platform/main", "--schema-dir", str(schema_dir), cwd=project)
    assert res.returncode == 0, res.stdout + res.stderr
