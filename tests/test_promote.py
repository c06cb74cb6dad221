"""`gitops-tool promote` happy paths, golden diffs and gates, end to end.

Real parts only: one `mlflow server` (sqlite) per module with two really trained wine versions
(v1 accuracy ~0.926, v2 1.0), a bare Git remote on disk per test, the CLI as a subprocess and the
real kustomize for rendering. The one stand-in is a loopback recorder (tests/mlflow_harness.py
RecordingServer) playing a *wrong* registry in the tracking-URI precedence test, to prove which
URI was asked.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import find, render_docs
from tests.mlflow_harness import RecordingServer
from tests.promotion_fixtures import (  # noqa: F401 - fixtures
    WINE,
    make_repo,
    registry,
    repo,
    subject_of,
    trailers_of,
)

pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).parent / "golden"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b1" * 32
IMAGE_REPO = "registry.example.com/ml/wine-classifier"


def _ok(res):
    assert res.returncode == 0, f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    return res


def _json(res) -> dict:
    return json.loads(_ok(res).stdout)


def _served_image(repo, env: str) -> tuple[str, dict]:
    isvc = find(render_docs(repo.root / "environments" / env), "InferenceService", WINE)
    return isvc["spec"]["predictor"]["containers"][0]["image"], isvc["metadata"]["annotations"]


# -- refs, environments, commit message, trailers, JSON ---------------------------------------------


def test_alias_promotion_commits_pushes_and_records_trailers(repo, registry):
    registry.set_alias("candidate", registry.v1)
    first = _json(repo.promote(f"{WINE}@candidate", "--output", "json"))
    assert {k: first[k] for k in ("env", "model", "from", "to", "image", "pushed", "skipped")} == {
        "env": "dev", "model": WINE, "from": None, "to": registry.v1,
        "image": f"{IMAGE_REPO}:v{registry.v1}", "pushed": True, "skipped": None,
    }
    assert first["commit"] == repo.head() == repo.remote_head()
    assert [s["name"] for s in first["steps"]] == ["resolve", "gates", "commit+push", "argocd refresh",
                                                   "record on version"]
    assert repo.porcelain() == ""

    registry.set_alias("candidate", registry.v2)
    second = _json(repo.promote(f"{WINE}@candidate", "-o", "json"))
    assert (second["from"], second["to"], second["commit"]) == (registry.v1, registry.v2, repo.remote_head())
    assert subject_of(repo.root) == f"promote(dev): {WINE} {registry.v1} -> {registry.v2} (@candidate)"
    assert subject_of(repo.root, "HEAD~1") == f"promote(dev): {WINE} none -> {registry.v1} (@candidate)"
    assert trailers_of(repo.root) == {
        "Model": WINE, "Environment": "dev", "Model-Version": registry.v2, "Previous-Version": registry.v1,
        "Alias": "@candidate", "Run-Id": registry.wine.v2["run_id"], "Image": f"{IMAGE_REPO}:v{registry.v2}",
        "Trigger": "manual",
    }
    # The remote holds both commits, the checkout is exactly the remote's main.
    assert repo.remote_count() == 3 and repo.head() == repo.remote_head()
    image, annotations = _served_image(repo, "dev")
    assert image == f"{IMAGE_REPO}:v{registry.v2}"
    assert annotations["gitops-tool.io/model-version"] == registry.v2


def test_version_ref_needs_env_and_models_uri_form_works(repo, registry):
    res = repo.promote(f"{WINE}/{registry.v1}")
    assert res.returncode == 2  # a usage error
    assert "needs --env" in res.stderr and "@candidate -> dev" in res.stderr and "@champion -> prod" in res.stderr

    _ok(repo.promote(f"{WINE}/{registry.v1}", "--env", "staging"))
    assert trailers_of(repo.root)["Environment"] == "staging"
    assert trailers_of(repo.root)["Alias"] == "none"
    assert subject_of(repo.root) == f"promote(staging): {WINE} none -> {registry.v1}"

    registry.set_alias("champion", registry.v1)
    out = _json(repo.promote(f"models:/{WINE}@champion", "-o", "json"))
    assert (out["env"], out["to"]) == ("prod", registry.v1)
    assert subject_of(repo.root) == f"promote(prod): {WINE} none -> {registry.v1} (@champion)"
    assert repo.remote_head() == repo.head() == out["commit"]


def test_env_override_beats_alias_map(repo, registry):
    registry.set_alias("candidate", registry.v2)
    out = _json(repo.promote(f"{WINE}@candidate", "--env", "staging", "-o", "json"))
    assert out["env"] == "staging"
    assert trailers_of(repo.root)["Alias"] == "@candidate"
    assert "wine-classifier" not in repo.release("dev").read_text()


def test_unmapped_alias_fails_and_prints_alias_map(repo, registry):
    registry.set_alias("shadow", registry.v1)
    before = repo.snapshot()
    res = repo.promote(f"{WINE}@shadow")
    assert res.returncode == 1, res.stderr
    assert "alias @shadow" in res.stderr and "maps to no environment" in res.stderr
    assert "@candidate -> dev, @challenger -> staging, @champion -> prod" in res.stderr
    assert repo.snapshot() == before


# -- image precedence and digests ------------------------------------------------------------------


def test_image_order_flag_then_version_tag_digest_first_then_template(repo, registry):
    v = registry.v1
    registry.set_alias("candidate", v)
    try:
        out = _json(repo.promote(f"{WINE}@candidate", "-o", "json"))
        assert out["image"] == f"{IMAGE_REPO}:v{v}"  # the template `{repository}:v{version}`

        registry.set_version_tag(v, "image", f"{IMAGE_REPO}:build-77")
        out = _json(repo.promote(f"{WINE}@candidate", "-o", "json"))
        assert out["image"] == f"{IMAGE_REPO}:build-77" and out["commit"]  # same version, new image: a commit
        assert "newTag: build-77" in repo.release("dev").read_text()

        registry.set_version_tag(v, "image_digest", f"{IMAGE_REPO}@{DIGEST_A}")
        out = _json(repo.promote(f"{WINE}@candidate", "-o", "json"))
        assert out["image"] == f"{IMAGE_REPO}@{DIGEST_A}"  # a digest beats a tag
        assert trailers_of(repo.root)["Image"] == f"{IMAGE_REPO}@{DIGEST_A}"
        text = repo.release("dev").read_text()
        assert f"digest: {DIGEST_A}" in text and "newTag" not in text
        image, _ = _served_image(repo, "dev")
        assert image == f"{IMAGE_REPO}@{DIGEST_A}"  # rendered by the real kustomize

        out = _json(repo.promote(f"{WINE}@candidate", "--image-tag", DIGEST_B, "-o", "json"))
        assert out["image"] == f"{IMAGE_REPO}@{DIGEST_B}"  # the flag beats the version's tags
        assert _served_image(repo, "dev")[0] == f"{IMAGE_REPO}@{DIGEST_B}"

        out = _json(repo.promote(f"{WINE}@candidate", "--image-tag", "hotfix-3", "-o", "json"))
        assert out["image"] == f"{IMAGE_REPO}:hotfix-3"
        assert _served_image(repo, "dev")[0] == f"{IMAGE_REPO}:hotfix-3"
        assert repo.remote_head() == repo.head()
    finally:
        registry.delete_version_tag(v, "image")
        registry.delete_version_tag(v, "image_digest")


# -- tracking URI, step summary, skips, --no-push, --dry-run, --repo-url ----------------------------


def test_tracking_uri_precedence_flag_then_env_then_config(tmp_path, registry):
    """Stand-in: a loopback recorder plays the *wrong* registry (answers MLflow's 404) to show who was asked."""
    repo = make_repo(tmp_path, None, edit_config=lambda t: t.replace("http://127.0.0.1:5000", registry.url))
    registry.set_alias("candidate", registry.v1)
    not_found = (404, {"Content-Type": "application/json"},
                 b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such model"}')
    with RecordingServer(lambda rec: not_found) as wrong:
        # gitops.yaml alone: the real registry.
        _ok(repo.promote(f"{WINE}@candidate", "--dry-run", env=repo.env()))
        # MLFLOW_TRACKING_URI beats gitops.yaml.
        res = repo.promote(f"{WINE}@candidate", "--dry-run", env=repo.env(MLFLOW_TRACKING_URI=wrong.url))
        assert res.returncode == 1 and wrong.url in res.stderr and len(wrong.requests) == 1
        # --tracking-uri beats MLFLOW_TRACKING_URI.
        _ok(repo.promote(f"{WINE}@candidate", "--dry-run", "--tracking-uri", registry.url,
                         env=repo.env(MLFLOW_TRACKING_URI=wrong.url)))
        assert len(wrong.requests) == 1
        res = repo.promote(f"{WINE}@candidate", "--dry-run", "--tracking-uri", wrong.url)
        assert res.returncode == 1 and len(wrong.requests) == 2
    assert repo.porcelain() == "" and repo.remote_count() == 1


def test_step_summary_already_promoted_and_no_push(repo, registry, tmp_path):
    summary = tmp_path / "summary.md"
    registry.set_alias("candidate", registry.v1)
    env = repo.env(GITHUB_STEP_SUMMARY=str(summary))
    first = _ok(repo.promote(f"{WINE}@candidate", env=env))
    sha = repo.head()
    assert f"{WINE} none -> {registry.v1} in dev: pushed {sha}" in first.stdout
    text = summary.read_text()
    assert f"### gitops-tool: {WINE} in dev" in text
    assert f"| none | {registry.v1} | `{IMAGE_REPO}:v{registry.v1}` | `{sha[:12]}` |" in text

    again = _ok(repo.promote(f"{WINE}@candidate", env=env))
    assert "already promoted" in again.stdout and "no commit" in again.stdout
    assert repo.head() == repo.remote_head() == sha
    assert "| already promoted |" in summary.read_text()
    assert _json(repo.promote(f"{WINE}@candidate", "-o", "json"))["skipped"] == "already promoted"

    registry.set_alias("candidate", registry.v2)
    local = _ok(repo.promote(f"{WINE}@candidate", "--no-push"))
    kept = f"gitops-tool/unpushed/dev/{WINE}"
    assert "committed, not pushed" in local.stdout and f"kept on local branch {kept}" in local.stdout
    # --no-push builds on the remote's tip and leaves the commit on its own branch, not on the user's.
    assert repo.remote_head() == repo.head() == sha and repo.git("rev-parse", f"{kept}~1").strip() == sha
    assert repo.porcelain() == ""


def test_dry_run_prints_the_diff_and_changes_nothing(repo, registry):
    registry.set_alias("candidate", registry.v2)
    before = repo.snapshot()
    res = _ok(repo.promote(f"{WINE}@candidate", "--dry-run"))
    assert "dry run" in res.stdout
    assert "+++ b/environments/dev/release/kustomization.yaml" in res.stdout
    assert f"+    newTag: v{registry.v2}" in res.stdout
    assert f'+    gitops-tool.io/model-version: "{registry.v2}"' in res.stdout
    assert repo.snapshot() == before
    assert not repo.release("dev", f"{WINE}.yaml").exists()


def test_repo_url_promotes_in_a_fresh_clone(repo, registry, tmp_path):
    registry.set_alias("challenger", registry.v2)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    before = repo.snapshot()
    out = _json(repo.promote(f"{WINE}@challenger", "--repo-url", str(repo.remote), "-o", "json", cwd=elsewhere))
    assert out["pushed"] and out["env"] == "staging"
    assert repo.snapshot()[0] == before[0] and repo.porcelain() == ""  # the checkout is untouched
    assert repo.remote_head() == out["commit"] != before[1]
    assert trailers_of(repo.remote, out["commit"])["Model-Version"] == registry.v2
    assert list(elsewhere.iterdir()) == []


# -- golden files: minimal diffs and round-trip fidelity ------------------------------------------


def _untimed(text: str) -> str:
    """The deployed-at annotation carries the commit's time: the golden files keep a placeholder."""
    return re.sub(r"gitops-tool.io/deployed-at: '\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ'",
                  "gitops-tool.io/deployed-at: '<time>'", text)


def _golden(name: str, actual: str) -> None:
    actual = _untimed(actual)
    path = GOLDEN / name
    if os.environ.get("GOLDEN_UPDATE"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    assert actual == path.read_text(), f"differs from {path} (GOLDEN_UPDATE=1 rewrites it)"


def _diff(repo, *revs: str) -> str:
    text = repo.git("diff", "--no-color", "-U2", *revs)
    return "".join(line + "\n" for line in text.splitlines() if not line.startswith("index "))


def test_second_promotion_changes_exactly_the_tag_version_and_chain_lines(repo, registry):
    """The tag, the version, the artifact the tool wrote, and the deployed-before chain (new line)."""
    assert (registry.v1, registry.v2) == ("1", "2")  # the golden files name these versions
    _ok(repo.promote(f"{WINE}/1", "--env", "dev"))
    _golden("promote_dev_none_to_1.diff", _diff(repo, "HEAD~1", "HEAD"))
    _ok(repo.promote(f"{WINE}/2", "--env", "dev"))
    _golden("promote_dev_1_to_2.diff", _diff(repo, "HEAD~1", "HEAD"))
    numstat = repo.git("diff", "--numstat", "HEAD~1", "HEAD").split()
    assert numstat == ["1", "1", "environments/dev/release/kustomization.yaml",
                       "4", "3", "environments/dev/release/wine-classifier.yaml"]
    _golden("dev_release_v2/kustomization.yaml", repo.release("dev").read_text())
    _golden("dev_release_v2/wine-classifier.yaml", repo.release("dev", f"{WINE}.yaml").read_text())


HAND_EDITED = """\
# Owned by `gitops-tool promote`; hand-edited by the platform team.
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component

# patches first, on purpose
patches:
  - path: wine-classifier.yaml   # the version annotation lives here
resources:
  - ../../../base/serving/wine-classifier

images:
  # wine model image, pinned by promote
  - name: wine-classifier
    newName: "registry.example.com/ml/wine-classifier"
    newTag: 'v1'    # do not edit by hand
"""

HAND_EDITED_PATCH = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: wine-classifier   # keep in sync with base
  annotations:
    # set by promote
    gitops-tool.io/model-version: '1'

    team: ml-platform
"""


def test_comments_order_quoting_and_blank_lines_survive(repo, registry):
    _ok(repo.promote(f"{WINE}/1", "--env", "dev"))
    repo.release("dev").write_text(HAND_EDITED)
    repo.release("dev", f"{WINE}.yaml").write_text(HAND_EDITED_PATCH)
    repo.commit_and_push("hand edits to the dev release")
    _ok(repo.promote(f"{WINE}/2", "--env", "dev"))
    assert repo.release("dev").read_text() == HAND_EDITED.replace("newTag: 'v1'", "newTag: 'v2'")
    added = (f"    gitops-tool.io/artifact: {IMAGE_REPO}:v2\n"
             f"""    gitops-tool.io/deployed-before: '[{{"version":"1","image":"{IMAGE_REPO}:v1"}}]'\n""")
    patch = _untimed(repo.release("dev", f"{WINE}.yaml").read_text())
    added = "    gitops-tool.io/deployed-at: '<time>'\n" + added  # a new version: when it was deployed
    assert added in patch  # the tool's own annotations are appended; the rest is as it was
    assert patch.replace(added, "") == HAND_EDITED_PATCH.replace("model-version: '1'", "model-version: '2'")
    assert repo.git("diff", "--numstat", "HEAD~1", "HEAD").split()[::3] == ["1", "4"]
    image, annotations = _served_image(repo, "dev")
    assert image == f"{IMAGE_REPO}:v2" and annotations["team"] == "ml-platform"


# -- gates -------------------------------------------------------------------------------------


def test_metric_threshold_gate_names_gate_and_numbers(tmp_path, registry):
    repo = make_repo(tmp_path, registry.url, edit_config=lambda t: t.replace("accuracy >= 0.85", "accuracy >= 0.99"))
    registry.set_alias("candidate", registry.v1)
    before = repo.snapshot()
    res = repo.promote(f"{WINE}@candidate")
    assert res.returncode == 1, res.stdout + res.stderr
    acc = registry.wine.v1["metrics"]["accuracy"]
    assert f"gate metrics: {WINE} version {registry.v1}: accuracy = {acc:g}, needs >= 0.99" in res.stderr
    assert repo.snapshot() == before
    registry.set_alias("candidate", registry.v2)
    _ok(repo.promote(f"{WINE}@candidate"))  # v2 (accuracy 1.0) passes the same gate


def test_no_worse_than_deployed_gate(repo, registry):
    _ok(repo.promote(f"{WINE}/{registry.v2}", "--env", "dev"))
    before = repo.snapshot()
    res = repo.promote(f"{WINE}/{registry.v1}", "--env", "dev")
    assert res.returncode == 1
    old, new = registry.wine.v2["metrics"]["accuracy"], registry.wine.v1["metrics"]["accuracy"]
    assert (f"gate no_worse_than_deployed: {WINE} version {registry.v1}: accuracy = {new:g} is worse than "
            f"version {registry.v2} ({old:g})") in res.stderr
    assert repo.snapshot() == before


def test_require_previous_stage_gate(repo, registry):
    before = repo.snapshot()
    res = repo.promote(f"{WINE}/{registry.v2}", "--env", "prod")
    assert res.returncode == 1
    assert (f"gate require_previous_stage: {WINE} version {registry.v2} has not run in staging "
            "(needed before prod)") in res.stderr
    assert repo.snapshot() == before
    _ok(repo.promote(f"{WINE}/{registry.v2}", "--env", "staging"))
    out = _json(repo.promote(f"{WINE}/{registry.v2}", "--env", "prod", "-o", "json"))
    assert out["commit"] == repo.remote_head()
    assert any(s["detail"].endswith("ran in staging first") for s in out["steps"] if s["name"] == "gates")
    docs = yaml.safe_load(repo.release("prod").read_text())
    assert docs["images"][0]["newTag"] == f"v{registry.v2}"
