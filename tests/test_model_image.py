"""The image-mode Dockerfile: `mlflow models generate-dockerfile` output (3.17.2, captured verbatim in
tests/fixtures/model-image/) rewritten to run as the predictor pod does. The boot test
(tests/platform/) runs the resulting entrypoint under the pod's UID and read-only root."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gitops_tool.errors import GitopsError
from gitops_tool.platform.model_image import entrypoint_script, harden_build_dir, harden_dockerfile, main

GENERATED = (Path(__file__).parent / "fixtures" / "model-image" / "Dockerfile.generated").read_text()


def test_nginx_is_gone_and_the_user_is_the_pods():
    assert "install -y --no-install-recommends nginx" in GENERATED and "USER" not in GENERATED
    text = harden_dockerfile(GENERATED)
    assert "nginx" not in text.replace("# nginx removed", "")
    assert "USER 10003:10003" in text and "_serve(" not in text
    assert text.rstrip().endswith('ENTRYPOINT ["/usr/local/bin/serve-model"]')
    assert "COPY model_dir/model /opt/ml/model" in text  # the model layer is kept as MLflow wrote it


def test_entrypoint_serves_on_all_interfaces_at_the_predictor_port(tmp_path: Path):
    script = entrypoint_script()
    assert '--host 0.0.0.0 --port "${PORT:-8080}"' in script and "mlflow.pyfunc.scoring_server.app:app" in script
    (tmp_path / "serve").write_text(script)
    assert subprocess.run(["sh", "-n", str(tmp_path / "serve")]).returncode == 0


def test_build_dir_is_rewritten_in_place_and_bad_input_is_named(tmp_path: Path, capsys):
    (tmp_path / "Dockerfile").write_text(GENERATED)
    assert main([str(tmp_path)]) == 0
    assert (tmp_path / "serve-model").stat().st_mode & 0o111
    with pytest.raises(GitopsError, match="no MLflow serving ENTRYPOINT"):
        harden_dockerfile("FROM python:3.11\n")
    assert main([str(tmp_path / "missing")]) == 1 and "not found" in capsys.readouterr().err
    with pytest.raises(GitopsError):
        harden_build_dir(tmp_path / "missing")
