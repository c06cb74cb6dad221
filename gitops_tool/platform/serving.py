"""KServe InferenceServices, one per served model, in base/serving/<model>/.

They are not in base/serving/kustomization.yaml: an environment serves a model from its
first promotion on, when its release component adds the directory, pins the image and
annotates the version. Nothing unpinned is ever deployed. The deployment mode, replicas and
resources come from each environment's serving policy (serving_patch, a JSON patch the
environment's overlay applies by name, so it matches nothing until the model is promoted).
"""

from __future__ import annotations

from gitops_tool.config import Config, Environment, Model
from gitops_tool.config.model import DEFAULT_MODEL_RESOURCES
from gitops_tool.platform.common import UID, WAVE, container_security, metadata, resources

SERVING_PORT = 8080  # the image-mode image (platform/model_image.py) serves /invocations and /ping here


def image_name(model: Model) -> str:
    """The placeholder image name the overlay's `images:` entry rewrites."""
    return model.name


def inference_service(cfg: Config, model: Model) -> dict:
    meta = metadata(model.name, "model-serving", wave=WAVE["serving"], extra={
        "gitops-tool.io/registered-model": model.registered_model,
    })
    # Replicas are the environment's: serving_patch sets them.
    predictor: dict = {"minReplicas": 1, "maxReplicas": 1}
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
                "resources": resources(model.resources or DEFAULT_MODEL_RESOURCES),
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
                "resources": resources(model.resources or DEFAULT_MODEL_RESOURCES),
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


def serving_patch(cfg: Config, model: Model, env: Environment) -> list[dict]:
    """JSON patch (RFC 6902) with the environment's serving policy for one model.

    A JSON patch, not a strategic merge: kustomize knows no merge keys for the CRD's containers
    list and would replace the whole container.
    """
    where = "/spec/predictor/containers/0/resources" if model.mode == "image" else "/spec/predictor/model/resources"
    return [
        {"op": "add", "path": "/metadata/annotations/serving.kserve.io~1deploymentMode", "value": env.serving.mode},
        *scale_to_zero(env),
        {"op": "add", "path": "/spec/predictor/minReplicas", "value": env.serving.min_replicas},
        {"op": "add", "path": "/spec/predictor/maxReplicas", "value": env.serving.max_replicas},
        {"op": "add", "path": where, "value": resources(cfg.model_resources(model, env))},
    ]


# min_replicas: 0 (Serverless only, config/build.py checks it): KServe turns minReplicas 0 into Knative's
# min-scale 0. The InferenceService's annotations reach the Knative revision. initial-scale 1: a new
# revision starts one pod, so it becomes Ready (and `wait` sees it) before idling to zero; a zero
# initial scale also needs the cluster-wide allow-zero-initial-scale. The retention period keeps the
# last pod a while after the last request, so a short pause costs no cold start.
SCALE_TO_ZERO_ANNOTATIONS = {
    "autoscaling.knative.dev/initial-scale": "1",
    "autoscaling.knative.dev/scale-to-zero-pod-retention-period": "5m",
}


def scale_to_zero(env: Environment) -> list[dict]:
    if env.serving.min_replicas != 0:
        return []
    return [{"op": "add", "path": "/metadata/annotations/" + key.replace("/", "~1"), "value": value}
            for key, value in SCALE_TO_ZERO_ANNOTATIONS.items()]
