"""KServe InferenceServices, one per served model, in base/serving/<model>/.

They are not in base/kustomization.yaml: an environment serves a model from its
first promotion on, when its release component adds the directory, pins the
image and annotates the version. Nothing unpinned is ever deployed.
"""

from __future__ import annotations

from gitops_tool.config import Config, Model
from gitops_tool.platform.common import UID, WAVE, container_security, metadata, resources

SERVING_PORT = 8080  # `mlflow models build-docker` images serve /invocations and /ping here


def image_name(model: Model) -> str:
    """The placeholder image name the overlay's `images:` entry rewrites."""
    return model.name


def inference_service(cfg: Config, model: Model) -> dict:
    meta = metadata(model.name, "model-serving", wave=WAVE["serving"], extra={
        # Plain Deployment + Service: no Knative needed, and NetworkPolicies apply as usual.
        "serving.kserve.io/deploymentMode": "RawDeployment",
        "gitops-tool.io/registered-model": model.registered_model,
    })
    predictor: dict = {"minReplicas": model.min_replicas, "maxReplicas": model.max_replicas}
    if model.mode == "image":
        probe = {"httpGet": {"path": "/ping", "port": SERVING_PORT}, "periodSeconds": 10, "timeoutSeconds": 5}
        predictor |= {
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": UID["serving"], "runAsGroup": UID["serving"],
                                "fsGroup": UID["serving"], "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "kserve-container",
                "image": image_name(model),
                "ports": [{"containerPort": SERVING_PORT, "protocol": "TCP"}],
                "env": [{"name": "HOME", "value": "/tmp"}],
                "resources": resources(model.resources),
                "readinessProbe": probe,
                "livenessProbe": {**probe, "periodSeconds": 20, "failureThreshold": 6},
                "securityContext": container_security(),
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        }
    else:
        # MLServer's mlflow runtime speaks the V2 protocol; the release patch sets storageUri.
        predictor |= {
            "serviceAccountName": f"{model.name}-storage",
            "model": {
                "modelFormat": {"name": "mlflow"},
                "protocolVersion": "v2",
                "resources": resources(model.resources),
            },
        }
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": meta,
            "spec": {"predictor": predictor}}


def storage_service_account(model: Model) -> dict:
    # KServe reads S3 credentials from the Secrets attached to the predictor's ServiceAccount.
    return {
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": metadata(f"{model.name}-storage", "model-serving"),
        "automountServiceAccountToken": False,
        "secrets": [{"name": "kserve-s3-credentials"}],
    }


def serving_files(cfg: Config, model: Model) -> dict[str, list[dict] | dict]:
    docs = [inference_service(cfg, model)]
    files: dict = {"inferenceservice.yaml": docs}
    resources_list = ["inferenceservice.yaml"]
    if model.mode == "storage":
        files["serviceaccount.yaml"] = [storage_service_account(model)]
        resources_list.append("serviceaccount.yaml")
    files["kustomization.yaml"] = [{
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources_list,
    }]
    return files
