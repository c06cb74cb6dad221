"""Run every check over rendered overlays, rendering and checking in one thread pool."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gitops_tool.errors import GitopsError
from gitops_tool.kustomize.render import parse_documents, run_kustomize
from gitops_tool.validate.crds import check_crd
from gitops_tool.validate.findings import UNCHECKED, Finding, describe, format_path
from gitops_tool.validate.kube_schemas import K8S_VERSION, check_builtin, warm_up
from gitops_tool.validate.rules import check_rules
from gitops_tool.validate.secrets_scan import literal_env_secrets, redact, string_values, token_hits


def _unchecked_message(api_version: str, kind: str, schema_dir: Path | None) -> str:
    if schema_dir is None:
        where = "(none packaged with gitops-tool, no --schema-dir given)"
    elif not Path(schema_dir).is_dir():
        where = f"in {schema_dir} (folder missing)"
    else:
        where = f"in {schema_dir} or packaged with gitops-tool"
    return f"unchecked: no schema for {api_version} {kind} {where}"


def _secret_problems(doc: dict) -> list[tuple[str, str]]:
    problems = [
        (format_path(path), f"env {name} has a literal value; use valueFrom.secretKeyRef")
        for path, name in literal_env_secrets(doc)
    ]
    for path, value in string_values(doc):
        problems += [
            (format_path(path), f"looks like a {rule} ({redact(match.group(0))})") for rule, match in token_hits(value)
        ]
    return problems


def check_document(env: str, doc: dict, schema_dir: Path | None, k8s_version: str) -> list[Finding]:
    kind, name = describe(doc)
    problems = check_builtin(doc, k8s_version)
    if problems is None:
        problems = check_crd(doc, schema_dir)
    findings = []
    if problems is None:
        message = _unchecked_message(str(doc.get("apiVersion")), kind, schema_dir)
        findings.append(Finding(env, kind, name, "apiVersion", message, UNCHECKED))
    problems = (problems or []) + check_rules(doc) + _secret_problems(doc)
    return findings + [Finding(env, kind, name, path, message) for path, message in problems]


def validate_environment(
    env: str, rendered: str, *, schema_dir: Path | None, k8s_version: str = K8S_VERSION
) -> list[Finding]:
    """All findings for one environment's rendered YAML stream."""
    try:
        docs = parse_documents(rendered)
    except GitopsError as exc:
        return [Finding(env, "Stream", env, "(yaml)", " ".join(str(exc).split())[:300])]
    findings: list[Finding] = []
    for doc in docs:
        findings += check_document(env, doc, schema_dir, k8s_version)
    return findings


def _render_and_check(env: str, overlay: Path, schema_dir: Path | None, k8s_version: str) -> list[Finding]:
    try:
        proc = run_kustomize(overlay)
    except GitopsError as exc:
        return [Finding(env, "Kustomization", env, str(overlay), str(exc))]
    if proc.returncode != 0:
        message = proc.stderr.strip() or f"kubectl kustomize exited {proc.returncode}"
        return [Finding(env, "Kustomization", env, str(overlay), message)]
    return validate_environment(env, proc.stdout, schema_dir=schema_dir, k8s_version=k8s_version)


def validate_all(
    envs: dict[str, Path],
    *,
    schema_dir: Path | None,
    k8s_version: str = K8S_VERSION,
    max_workers: int | None = None,
) -> list[Finding]:
    """Render and check every environment; findings come back in the order of `envs`."""
    # Schema loading overlaps the first kustomize runs instead of following them.
    threading.Thread(target=warm_up, args=(k8s_version,), daemon=True).start()
    workers = max(1, max_workers or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="validate") as pool:
        futures = [pool.submit(_render_and_check, env, Path(d), schema_dir, k8s_version) for env, d in envs.items()]
        return [finding for future in futures for finding in future.result()]
