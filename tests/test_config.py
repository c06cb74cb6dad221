"""gitops.yaml: schema errors name the file, line and path; bad input writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_tool.config import load_config, load_config_text
from gitops_tool.errors import GitopsError
from gitops_tool.project import starter_config
from tests.conftest import run_cli


def _error(text: str) -> str:
    with pytest.raises(GitopsError) as info:
        load_config_text(text)
    return str(info.value)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_starter_config_loads_with_defaults():
    cfg = load_config_text(starter_config())
    assert list(cfg.platform) == ["main"] and cfg.registry.name == "main"
    assert cfg.registry.autoscaling["max_replicas"] == 6 and cfg.registry.object_store.kind == "minio"
    assert list(cfg.environments) == ["dev", "staging", "prod"]
    assert cfg.environments["prod"].cluster.server == "https://prod.k8s.example.com"
    assert cfg.environments["dev"].cluster.server == "https://kubernetes.default.svc"
    assert cfg.environments["prod"].serving.mode == "Serverless"
    model = cfg.models["wine-classifier"]
    assert model.aliases == {"candidate": "dev", "challenger": "staging", "champion": "prod"}
    assert model.mode == "image"
    assert cfg.mlflow["artifacts_bucket"] == "mlflow-artifacts"
    assert cfg.branch == "main"


def test_wrong_type_names_line_and_path():
    text = starter_config().replace("      replicas: 2\n", "      replicas: two\n")
    line = _line_of(text, "replicas: two")
    assert _error(text) == f"gitops.yaml:{line} platform.instances.main.replicas: 'two' is not of type 'integer'"


def test_unknown_key_is_named_with_its_line():
    text = starter_config().replace("    workers: 2\n", "    workers: 2\n    wrokers: 3\n")
    message = _error(text)
    assert message.startswith(f"gitops.yaml:{_line_of(text, 'wrokers')} platform.mlflow.wrokers: unknown key 'wrokers'")


def test_malformed_yaml_names_the_line():
    text = starter_config().replace("  branch: main\n", "  branch: [main\n")
    assert "malformed YAML" in _error(text)
    assert _error(text).startswith("gitops.yaml:")


@pytest.mark.parametrize("old,new,path", [
    ("  prod:\n", "  Prod_Env:\n", "environments.Prod_Env"),
    ("  wine-classifier:\n", "  Wine_Classifier:\n", "models.Wine_Classifier"),
])
def test_names_must_be_dns_labels(old, new, path):
    message = _error(starter_config().replace(old, new))
    assert path in message and "DNS label" in message


def test_alias_to_unknown_environment():
    message = _error(starter_config().replace("champion: prod", "champion: production"))
    assert "alias 'champion' maps to unknown environment 'production'" in message
    assert "models.wine-classifier.aliases.champion" in message


def test_several_errors_are_all_reported_in_line_order():
    text = starter_config().replace("      replicas: 2\n", "      replicas: two\n").replace("workers: 2", "workers: many")
    lines = _error(text).splitlines()
    assert len(lines) == 2 and "mlflow.workers" in lines[0] and "platform.instances.main.replicas" in lines[1]


def test_missing_file(tmp_path: Path):
    with pytest.raises(GitopsError, match="not found"):
        load_config(tmp_path / "gitops.yaml")


def test_cli_missing_config_exits_1_and_names_it(tmp_path: Path):
    result = run_cli("generate", cwd=tmp_path)
    assert result.returncode == 1
    assert "gitops.yaml: not found" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_bad_config_writes_nothing(tmp_path: Path):
    (tmp_path / "gitops.yaml").write_text(starter_config().replace("      replicas: 2\n", "      replicas: two\n"))
    result = run_cli("generate", cwd=tmp_path)
    assert result.returncode == 1
    assert "platform.instances.main.replicas: 'two' is not of type 'integer'" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["gitops.yaml"]


def test_cli_usage_error_keeps_exit_2(tmp_path: Path):
    assert run_cli("generate", "--no-such-flag", cwd=tmp_path).returncode == 2


# --- gitops-tool/v2: one platform, serving environments (the bad input the topology must refuse) ---

STAGING_PLATFORM = """\
    staging:
      namespace: mlflow-staging
      host: mlflow.staging.example.com
"""


@pytest.mark.parametrize("old,new,needle,message", [
    # A destination the AppProject cannot allow: the cluster is not named under argocd.clusters.
    ("    cluster: prod\n", "    cluster: https://other.example.com\n", "cluster: https://other",
     "environments.prod.cluster: cluster 'https://other.example.com' is not one the AppProject allows"),
    ("    cluster: prod\n", "    cluster: edge\n", "cluster: edge",
     "environments.prod.cluster: cluster 'edge' is not one the AppProject allows"),
    # Two environments in one namespace on the same cluster.
    ("    namespace: models-staging\n", "    namespace: models-dev\n", ("namespace: models-dev", 2),
     "environments.staging.namespace: namespace 'models-dev' on cluster in-cluster is already used by environments.dev"),
    # A serving environment in the platform's namespace.
    ("    namespace: models-dev\n", "    namespace: mlflow\n", ("namespace: mlflow", 2),
     "environments.dev.namespace: namespace 'mlflow' on cluster in-cluster is already used by platform.instances.main"),
    # Scale to zero where the mode cannot.
    ("serving: {mode: Standard, min_replicas: 1, max_replicas: 2}", "serving: {mode: Standard, min_replicas: 0, max_replicas: 2}",
     "min_replicas: 0", "environments.dev.serving.min_replicas: 0 (scale to zero) needs KServe Serverless mode"),
    # A model mapped to an environment that may not serve it.
    ("serving: {mode: Standard, min_replicas: 1, max_replicas: 3}", "serving: {mode: Standard, models: [fraud-model]}",
     "challenger: staging", "models.wine-classifier.aliases.challenger: environment 'staging' may not serve 'wine-classifier'"),
    # An external object store without its endpoint or credentials Secret.
    ("    kind: minio\n", "    kind: external\n", "object_store:",
     "platform.object_store: 'endpoint' is a required property"),
    ("    kind: minio\n", "    kind: external\n    endpoint: https://s3.eu-west-1.amazonaws.com\n", "object_store:",
     "platform.object_store: 'credentials_secret' is a required property"),
])
def test_topology_bad_input_names_file_line_and_field(old, new, needle, message):
    text = starter_config().replace(old, new)
    assert text != starter_config(), f"the test's edit did not apply: {old!r}"
    error = _error(text)
    needle, nth = needle if isinstance(needle, tuple) else (needle, 1)
    line = [i for i, row in enumerate(text.splitlines(), 1) if needle in row][nth - 1]
    assert message in error
    assert error.startswith(f"gitops.yaml:{line} "), error


def test_second_platform_instance_needs_exactly_one_registry_of_record():
    text = starter_config().replace("      registry_of_record: true\n", "")
    text = text.replace("# Serving environments", STAGING_PLATFORM + "\n# Serving environments")
    assert "exactly one instance needs registry_of_record: true" in _error(text)
    both = text.replace("      namespace: mlflow-staging\n", "      registry_of_record: true\n      namespace: mlflow-staging\n")
    both = both.replace("    main:\n", "    main:\n      registry_of_record: true\n")
    assert "found 2 (main, staging)" in _error(both)
    one = text.replace("    main:\n", "    main:\n      registry_of_record: true\n")
    cfg = load_config_text(one)
    assert cfg.registry.name == "main" and not cfg.platform["staging"].registry_of_record


def test_environment_may_not_take_the_platform_folder():
    text = starter_config().replace("  dev:\n    namespace: models-dev", "  platform:\n    namespace: models-dev")
    text = text.replace("candidate: dev", "candidate: platform")
    assert "the name 'platform' is reserved" in _error(text)


def test_storage_mode_across_clusters_needs_a_reachable_store():
    text = starter_config().replace("    mode: image\n", "    mode: storage\n")
    assert "cannot reach the in-cluster MinIO of platform instance main" in _error(text)
    reachable = text.replace("    bucket: mlflow-artifacts\n",
                             "    bucket: mlflow-artifacts\n    public_endpoint: https://s3.mlflow.example.com\n")
    assert load_config_text(reachable).models["wine-classifier"].mode == "storage"


def test_v1_file_gets_the_moves_and_writes_nothing(tmp_path: Path):
    v1 = "apiVersion: gitops-tool/v1\nproject: p\nrepo: {url: x}\nmlflow: {tracking_uri: http://m}\nenvironments: {}\n"
    (tmp_path / "gitops.yaml").write_text(v1)
    result = run_cli("generate", cwd=tmp_path)
    assert result.returncode == 1
    assert "gitops.yaml:1 apiVersion: gitops-tool/v1 is no longer read" in result.stderr
    assert "platform.instances.<name>" in result.stderr and "environments.<env>.serving" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["gitops.yaml"]
