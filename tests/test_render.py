"""Real `kubectl kustomize` runs on tiny overlays built in tmp_path."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitops_tool.errors import GitopsError
from gitops_tool.kustomize.render import kubectl_path, parse_documents, render, render_many

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx
"""


def make_overlay(root: Path, env: str, tag: str = "1.27.3") -> Path:
    base = root / "base"
    if not base.exists():
        base.mkdir(parents=True)
        (base / "deployment.yaml").write_text(DEPLOYMENT)
        (base / "kustomization.yaml").write_text("resources:\n  - deployment.yaml\n")
    overlay = root / "environments" / env
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text(
        f"namespace: mlflow-{env}\nresources:\n  - ../../base\nimages:\n  - name: nginx\n    newTag: \"{tag}\"\n"
    )
    return overlay


def test_kubectl_is_the_wheels_binary() -> None:
    path = Path(kubectl_path())
    assert path.parent == Path(sys.executable).parent, path
    assert path != Path("/usr/bin/kubectl")
    out = subprocess.run([str(path), "version", "--client"], capture_output=True, text=True, check=True).stdout
    assert "Client Version: v1.37" in out
    assert "Kustomize Version: v5.8" in out


def test_render_applies_namespace_and_images(tmp_path: Path) -> None:
    docs = parse_documents(render(make_overlay(tmp_path, "dev")))
    assert len(docs) == 1
    deployment = docs[0]
    assert deployment["metadata"]["namespace"] == "mlflow-dev"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27.3"


def test_broken_kustomization_names_dir_and_stderr(tmp_path: Path) -> None:
    overlay = tmp_path / "broken"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text("resources:\n  - does-not-exist.yaml\n")
    with pytest.raises(GitopsError) as info:
        render(overlay)
    message = str(info.value)
    assert str(overlay) in message
    assert "does-not-exist.yaml" in message  # from kustomize's stderr
    assert "kubectl kustomize failed" in message


def test_missing_dir_is_a_gitops_error(tmp_path: Path) -> None:
    with pytest.raises(GitopsError, match="does not exist"):
        render(tmp_path / "nope")


def test_render_many_in_parallel_keeps_results_and_errors(tmp_path: Path) -> None:
    dirs = {env: make_overlay(tmp_path, env, tag=f"1.{i}") for i, env in enumerate(["dev", "staging", "prod"])}
    broken = tmp_path / "environments" / "broken"
    broken.mkdir()
    (broken / "kustomization.yaml").write_text("resources: [missing]\n")
    dirs["broken"] = broken
    start = time.perf_counter()
    results = render_many(dirs, max_workers=4)
    elapsed = time.perf_counter() - start
    assert list(results) == ["dev", "staging", "prod", "broken"]
    for i, env in enumerate(["dev", "staging", "prod"]):
        (doc,) = parse_documents(results[env])  # type: ignore[arg-type]
        assert doc["metadata"]["namespace"] == f"mlflow-{env}"
        assert doc["spec"]["template"]["spec"]["containers"][0]["image"] == f"nginx:1.{i}"
    assert isinstance(results["broken"], GitopsError)
    assert str(broken) in str(results["broken"])
    assert elapsed < 30


def test_parse_documents_skips_empty_and_keeps_timestamps_as_strings() -> None:
    text = "---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  when: 2024-01-02\n  eq: =\n"
    (doc,) = parse_documents(text)
    assert doc["data"] == {"when": "2024-01-02", "eq": "="}


def test_parse_documents_rejects_bad_yaml() -> None:
    with pytest.raises(GitopsError, match="does not parse"):
        parse_documents("a: [unclosed\n")
    with pytest.raises(GitopsError, match="not a mapping"):
        parse_documents("- just\n- a list\n")
