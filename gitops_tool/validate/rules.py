"""Project rules: no secrets in git, resources and probes everywhere, pinned images."""

from __future__ import annotations

from typing import Any, Iterator

from gitops_tool.validate.findings import format_path

Problem = tuple[str, str]  # (path, message)

# Where each workload kind keeps its pod spec.
_POD_SPEC = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Pod": ("spec",),
}
# Probes only make sense for containers that keep running.
_LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}
_ISVC_COMPONENTS = ("predictor", "transformer", "explainer")


def _get(doc: Any, path: tuple) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def image_problem(image: Any) -> str | None:
    """Why an image reference is not pinned, or None (a tag other than latest, or a digest)."""
    if not isinstance(image, str) or not image.strip():
        return "has no image"
    if "@" in image:
        return None  # a digest pins the bytes whatever the tag says
    last = image.rsplit("/", 1)[-1]  # a registry port (host:5000/app) is not a tag
    if ":" not in last:
        return f"image {image!r} is untagged (implicitly :latest)"
    if last.rsplit(":", 1)[1] == "latest":
        return f"image {image!r} uses :latest"
    return None


def _containers(spec: Any, base: tuple, field: str) -> Iterator[tuple[tuple, dict]]:
    items = spec.get(field) if isinstance(spec, dict) else None
    for index, container in enumerate(items if isinstance(items, list) else []):
        if isinstance(container, dict):
            yield base + (field, index), container


def _resources(path: tuple, container: dict) -> list[Problem]:
    name = container.get("name", "?")
    resources = container.get("resources") if isinstance(container.get("resources"), dict) else {}
    return [
        (format_path(path + ("resources", part)), f"container {name!r} has no resources.{part}")
        for part in ("requests", "limits")
        if not resources.get(part)
    ]


def _probes(path: tuple, container: dict) -> list[Problem]:
    name = container.get("name", "?")
    return [
        (format_path(path + (probe,)), f"container {name!r} has no {probe}")
        for probe in ("readinessProbe", "livenessProbe")
        if not container.get(probe)
    ]


def _image(path: tuple, container: dict) -> list[Problem]:
    problem = image_problem(container.get("image"))
    name = container.get("name", "?")
    return [(format_path(path + ("image",)), f"container {name!r}: {problem}")] if problem else []


def check_workload(doc: dict) -> list[Problem]:
    kind = doc.get("kind")
    base = _POD_SPEC.get(kind)  # type: ignore[arg-type]
    if base is None or "." in str(doc.get("apiVersion", "")).rpartition("/")[0]:
        return []
    spec = _get(doc, base)
    problems: list[Problem] = []
    for path, container in _containers(spec, base, "containers"):
        problems += _resources(path, container) + _image(path, container)
        if kind in _LONG_RUNNING:
            problems += _probes(path, container)
    for path, container in _containers(spec, base, "initContainers"):
        problems += _resources(path, container) + _image(path, container)
    for path, container in _containers(spec, base, "ephemeralContainers"):
        problems += _image(path, container)
    return problems


def check_secret(doc: dict) -> list[Problem]:
    if doc.get("kind") != "Secret" or doc.get("apiVersion") != "v1":
        return []
    return [
        (field, f"Secret has {field} in the rendered manifests (secrets must not live in git); "
         "use a SealedSecret or ExternalSecret")
        for field in ("data", "stringData")
        if doc.get(field)
    ]


def check_inference_service(doc: dict) -> list[Problem]:
    if doc.get("kind") != "InferenceService" or not str(doc.get("apiVersion", "")).startswith("serving.kserve.io/"):
        return []
    problems: list[Problem] = []
    for component in _ISVC_COMPONENTS:
        base = ("spec", component)
        for path, container in _containers(_get(doc, base), base, "containers"):
            problems += _resources(path, container)
            problem = image_problem(container.get("image"))
            if problem:
                message = f"container {container.get('name', '?')!r}: {problem}; not pinned by the overlay's images: entry"
                problems.append((format_path(path + ("image",)), message))
    model = _get(doc, ("spec", "predictor", "model"))
    if isinstance(model, dict):
        uri = model.get("storageUri")
        if not isinstance(uri, str) or not uri.strip():
            problems.append(("spec.predictor.model.storageUri", "storage mode needs a non-empty storageUri"))
        problems += _resources(("spec", "predictor", "model"), {"name": "model", **model})
    return problems


def check_rules(doc: dict) -> list[Problem]:
    return check_secret(doc) + check_workload(doc) + check_inference_service(doc)
