"""Scale to zero: `min_replicas: 0` in a Serverless environment, rendered with the real kustomize
and validated against the upstream KServe CRD schema (../shared/schemas). No stand-in."""

from __future__ import annotations

from pathlib import Path

from gitops_tool.platform.serving import SCALE_TO_ZERO_ANNOTATIONS
from gitops_tool.project import generate
from tests.conftest import find, render_docs, run_cli, write_release

IMAGE = "registry.example.com/ml/wine-classifier@sha256:" + "d" * 64
DEV_STANDARD = "    serving: {mode: Standard, min_replicas: 1, max_replicas: 2}\n"
DEV_TO_ZERO = "    serving: {mode: Serverless, min_replicas: 0, max_replicas: 2}\n"


def test_min_replicas_0_renders_knative_scale_to_zero_and_validates(project: Path, schema_dir: Path):
    config = project / "gitops.yaml"
    text = config.read_text()
    assert text.count(DEV_STANDARD) == 1
    config.write_text(text.replace(DEV_STANDARD, DEV_TO_ZERO))
    generate(config)
    write_release(project, "dev", "3", image=IMAGE)
    write_release(project, "prod", "3", image=IMAGE)

    dev = find(render_docs(project / "environments/dev"), "InferenceService", "wine-classifier")
    annotations, predictor = dev["metadata"]["annotations"], dev["spec"]["predictor"]
    assert annotations["serving.kserve.io/deploymentMode"] == "Serverless"
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (0, 2)
    assert {k: annotations[k] for k in SCALE_TO_ZERO_ANNOTATIONS} == {
        "autoscaling.knative.dev/initial-scale": "1",
        "autoscaling.knative.dev/scale-to-zero-pod-retention-period": "5m"}

    prod = find(render_docs(project / "environments/prod"), "InferenceService", "wine-classifier")
    assert prod["spec"]["predictor"]["minReplicas"] == 2  # Serverless with a floor: no scale-to-zero annotations
    assert not [k for k in prod["metadata"]["annotations"] if k.startswith("autoscaling.knative.dev/")]

    res = run_cli("validate", "dev", "--schema-dir", str(schema_dir), cwd=project)
    assert res.returncode == 0, res.stdout + res.stderr
