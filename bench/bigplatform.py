"""A generated platform with N serving environments and M models, for the scale benchmarks.

    from bench.bigplatform import make_platform, register_models
    root = make_platform(tmp / "p", envs=100, models=50)

Each model maps three aliases (candidate, challenger, champion) to three consecutive environments
(model j -> env j, j+1, j+2 modulo N), and each of those environments has the model released
(release files written by the same code a promotion runs, plan_release_edit). Every environment
may serve every model, so `status` has N x M rows. The tree is the one `gitops-tool generate`
writes, committed and pushed to a bare remote beside it (<root>-remote.git), since the commands
read the remote's tip.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

ALIASES = ("candidate", "challenger", "champion")
REGISTRY = "registry.example.com/ml"


def platform_yaml(envs: int, models: int) -> str:
    from gitops_tool.project import starter_config

    text = starter_config()
    head = text[: text.index("\nenvironments:\n")] + "\nenvironments:\n"
    for i in range(envs):
        head += (f"  env{i:03d}:\n    namespace: models-env{i:03d}\n"
                 f"    serving: {{mode: Standard, min_replicas: 1, max_replicas: {1 + i % 3}}}\n")
    body = "\nmodels:\n"
    for j in range(models):
        aliases = ", ".join(f"{a}: env{(j + k) % envs:03d}" for k, a in enumerate(ALIASES))
        body += f"  model{j:03d}:\n    image_repository: {REGISTRY}/model{j:03d}\n    aliases: {{{aliases}}}\n"
    return head + body


def make_platform(root: Path, *, envs: int, models: int, version: str = "1") -> Path:
    """gitops.yaml + the generated tree + one release per (model, mapped environment), committed."""
    from gitops_tool.config import load_config
    from gitops_tool.kustomize.release import parse_image
    from gitops_tool.kustomize.release_edit import ReleaseEdit, plan_release_edit
    from gitops_tool.project import generate

    root.mkdir(parents=True, exist_ok=True)
    (root / "gitops.yaml").write_text(platform_yaml(envs, models))
    generate(root / "gitops.yaml")
    cfg = load_config(root / "gitops.yaml")
    for name, model in cfg.models.items():
        image = parse_image(f"{REGISTRY}/{name}:v{version}")
        for env in dict.fromkeys(model.aliases.values()):
            for path, text in plan_release_edit(cfg.env_dir(env), ReleaseEdit(name, version, image=image)).items():
                path.write_text(text, encoding="utf-8")
    git = {"cwd": root, "check": True, "capture_output": True}
    remote = root.parent / f"{root.name}-remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], **git)
    subprocess.run(["git", "init", "-q", "-b", "main"], **git)
    subprocess.run(["git", "remote", "add", "origin", str(remote)], **git)
    subprocess.run(["git", "add", "-A"], **git)
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q",
                    "-m", f"platform {envs}x{models}"], **git)
    subprocess.run(["git", "push", "-q", "-u", "origin", "main"], **git)
    return root


def _post(url: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(f"{url}/api/2.0/mlflow/{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


def register_models(url: str, models: int, version: str = "1") -> None:
    """Register model000..model{M-1} in a real MLflow, one version each, every alias on it.

    The version's source is a placeholder s3:// path: status reads aliases only, never artifacts."""
    for j in range(models):
        name = f"model{j:03d}"
        _post(url, "registered-models/create", {"name": name})
        for _ in range(int(version)):
            _post(url, "model-versions/create", {"name": name, "source": f"s3://bench/{name}"})
        for alias in ALIASES:
            _post(url, "registered-models/alias", {"name": name, "alias": alias, "version": version})
