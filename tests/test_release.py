"""gitops-tool as a released artifact: one version, a wheel and sdist that work from a fresh virtualenv
outside the checkout, and the hand-written release workflow that builds the image from them.

Real: `python -m build`, a fresh virtualenv made by the generated install step, the installed console
script run in an empty directory, check-jsonschema with GitHub's workflow schema, and `generate`.
Nothing here can run GitHub Actions or Docker: the release workflow itself is checked, not run."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import yaml

from gitops_tool import __version__
from tests.conftest import REPO_ROOT, Installed
from tests.test_workflows import PINNED, check_schema

RELEASE = REPO_ROOT / ".github" / "workflows" / "release.yaml"
PACKAGE_DATA = ("gitops_tool/schema/gitops.schema.json", "gitops_tool/templates/gitops.yaml",
                "gitops_tool/validate/schemas/SOURCES.json",
                "gitops_tool/validate/schemas/serving.kserve.io/inferenceservice_v1beta1.json")


def tool(installed: Installed, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(installed.bin / "gitops-tool"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={"PATH": f"{installed.bin}:/usr/bin:/bin", "HOME": str(cwd)})


def test_the_version_is_written_once_and_names_the_artifacts(installed: Installed):
    text = (REPO_ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in text and f'"{__version__}"' not in text
    assert installed.wheel.name == f"gitops_tool-{__version__}-py3-none-any.whl"
    assert installed.sdist.name == f"gitops_tool-{__version__}.tar.gz"


def test_the_wheel_and_sdist_carry_the_schemas_and_the_starter(installed: Installed):
    """The wheel was built from the sdist (`python -m build`), so the sdist is complete too."""
    wheel_names = set(zipfile.ZipFile(installed.wheel).namelist())
    sdist_names = {n.split("/", 1)[1] for n in tarfile.open(installed.sdist).getnames() if "/" in n}
    for name in PACKAGE_DATA:
        assert name in wheel_names and name in sdist_names, name
    assert not any(n.startswith("tests/") for n in wheel_names)


def test_the_installed_tool_runs_help_init_and_validate_outside_the_checkout(installed: Installed, tmp_path):
    where = subprocess.run([str(installed.bin / "python"), "-c", "import gitops_tool; print(gitops_tool.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert str(installed.venv) in where and str(REPO_ROOT) not in where
    assert tool(installed, "--version", cwd=tmp_path).stdout.strip() == f"gitops-tool, version {__version__}"
    helped = tool(installed, "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "init" in helped.stdout and "completion" in helped.stdout
    made = tool(installed, "init", "platform", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    checked = tool(installed, "validate", cwd=tmp_path / "platform")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert ": 0 error(s), 0 unchecked, 5 warning(s)" in checked.stdout  # repo, 2 images, host, prod cluster
    strict = tool(installed, "validate", "--strict", cwd=tmp_path / "platform")
    assert strict.returncode == 1 and "(--strict)" in strict.stdout


def test_the_install_step_reuses_a_cached_virtualenv(installed: Installed, tmp_path):
    """The cache-hit path of the generated install step: nothing is installed, the venv goes on PATH."""
    from gitops_tool.platform.workflow_steps import INSTALL_SCRIPT
    from tests.conftest import runner_env

    env = runner_env(tmp_path, SPEC="gitops-tool==0.0.0-not-on-any-index", VENV=str(installed.venv), REINSTALL="0")
    step = subprocess.run(["bash", "-e", "-c", INSTALL_SCRIPT], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert step.returncode == 0, step.stderr
    assert step.stdout.strip() == f"gitops-tool, version {__version__}"
    assert (tmp_path / "github_path").read_text() == f"{installed.bin}\n"


def test_the_install_step_reinstalls_a_local_checkout_without_its_dependencies(installed: Installed, tmp_path):
    """SPEC '.' (REINSTALL=1): the code changes between runs; new dependencies come with a new cache key."""
    from gitops_tool.platform.workflow_steps import INSTALL_SCRIPT
    from tests.conftest import runner_env

    env = runner_env(tmp_path, SPEC=str(installed.wheel), VENV=str(installed.venv), REINSTALL="1",
                     PIP_NO_INDEX="1")  # --no-deps: nothing may be fetched
    step = subprocess.run(["bash", "-e", "-c", INSTALL_SCRIPT], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert step.returncode == 0, step.stderr
    assert step.stdout.strip() == f"gitops-tool, version {__version__}"


# --- the release workflow ---------------------------------------------------------------------------

def _release() -> dict:
    doc = yaml.safe_load(RELEASE.read_text())
    doc["on"] = doc.pop(True)
    return doc


def test_the_release_workflow_passes_githubs_schema():
    result = check_schema(RELEASE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_release_workflow_keeps_the_projects_rules():
    wf = _release()
    assert wf["permissions"] == {} and "v[0-9]+.[0-9]+.[0-9]+" in wf["on"]["push"]["tags"]
    writers = {}
    for job_id, job in wf["jobs"].items():
        assert "permissions" in job and job.get("timeout-minutes"), job_id
        writers[job_id] = {k for k, v in job["permissions"].items() if v == "write"}
        for step in job["steps"]:
            if "uses" in step:
                assert PINNED.match(step["uses"]) and "@v" not in step["uses"], step["uses"]
            assert "${{" not in step.get("run", ""), f"{job_id} {step.get('name')}"
    assert writers == {"dist": set(), "image": {"packages"}, "github-release": {"contents"}, "pypi": {"id-token"}}


def test_the_release_image_is_built_from_the_dockerfile_with_the_released_wheel():
    image = _release()["jobs"]["image"]
    build = next(s for s in image["steps"] if s.get("uses", "").startswith("docker/build-push-action@"))
    assert build["with"]["build-contexts"] == "wheel=dist" and build["with"]["context"] == "."
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "FROM scratch AS wheel\n" in dockerfile  # the stage that build-contexts replaces
    assert "--mount=type=bind,from=wheel" in dockerfile and "gitops_tool-*.whl" in dockerfile
    smoke = next(s for s in _release()["jobs"]["dist"]["steps"] if s["name"].startswith("Smoke-test"))["run"]
    assert "gitops-tool --help" in smoke and "gitops-tool init" in smoke and "gitops-tool validate\n" in smoke


def test_generate_leaves_the_hand_written_release_workflow_alone(project: Path):
    from gitops_tool.project import generate

    target = project / ".github" / "workflows" / "release.yaml"
    shutil.copy(RELEASE, target)
    for write in (False, True):
        actions = generate(project / "gitops.yaml", write=write).actions
        assert ".github/workflows/release.yaml" not in {a.path for a in actions}
    assert target.read_text() == RELEASE.read_text()
    assert generate(project / "gitops.yaml", write=False).changed == []
