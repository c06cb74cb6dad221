"""Concurrent `gitops-tool promote` processes against one bare remote: linear history, nothing lost,
never a silent overwrite.

Real parts only: one `mlflow server` per module (extra models are registered over REST as new
names whose versions point at the trained wine runs), real `gitops-tool promote` subprocesses, each
in its own clone of one bare remote on disk.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.promotion_fixtures import (  # noqa: F401 - fixtures
    WINE,
    PromoRepo,
    add_model_to_config,
    git,
    make_repo,
    registry,
    trailers_of,
)

pytestmark = pytest.mark.slow

EXTRA = ("model-a", "model-b")


@pytest.fixture(scope="module")
def extra_models(registry) -> dict[str, list[str]]:
    """model-a and model-b, no gates, four versions each (v1, v2, v1, v2 of the wine runs)."""
    versions = {}
    for name in EXTRA:
        first = list(registry.add_model(name))
        more = [registry.create_version_like(name, v)["version"] for v in (registry.v1, registry.v2)]
        versions[name] = first + more
    return versions


@pytest.fixture
def origin(tmp_path, registry, extra_models) -> PromoRepo:
    def edit(text: str) -> str:
        for name in EXTRA:
            text = add_model_to_config(text, name)
        return text

    return make_repo(tmp_path, registry.url, edit_config=edit)


def _spawn(clone: PromoRepo, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gitops_tool.cli.main", "promote", *args], cwd=clone.root,
                            env=clone.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(procs: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=240)
        out.append((p.returncode, stdout, stderr))
    return out


def _clones(origin: PromoRepo, base: Path, n: int) -> list[PromoRepo]:
    base.mkdir(exist_ok=True)
    return [origin.clone(base / f"clone{i}") for i in range(n)]


def _chain_is_consistent(origin: PromoRepo) -> None:
    """Every promotion commit's Previous-Version is what its parent deployed: no silent overwrite."""
    shas = git(origin.remote, "rev-list", "--reverse", "refs/heads/main").split()[1:]
    deployed: dict[tuple[str, str], str] = {}
    for sha in shas:
        t = trailers_of(origin.remote, sha)
        key = (t["Model"], t["Environment"])
        assert t["Previous-Version"] == deployed.get(key, "none"), (sha, t, deployed)
        deployed[key] = t["Model-Version"]


def test_eight_writers_on_different_models_and_envs_all_land_linearly(origin, registry, extra_models, tmp_path):
    jobs = [(WINE, registry.v1, "dev"), (WINE, registry.v2, "staging")]
    jobs += [(m, extra_models[m][1], env) for m in EXTRA for env in ("dev", "staging", "prod")]
    assert len(jobs) == 8
    clones = _clones(origin, tmp_path / "clones", len(jobs))
    start = origin.remote_head()
    procs = [_spawn(c, f"{m}/{v}", "--env", env) for c, (m, v, env) in zip(clones, jobs)]
    results = _wait(procs)
    failures = [(code, err) for code, _, err in results if code != 0]
    assert not failures, f"{len(failures)} of 8 concurrent promotions failed: {failures}"
    assert git(origin.remote, "rev-list", "--merges", "refs/heads/main") == ""
    new = git(origin.remote, "rev-list", f"{start}..refs/heads/main").split()
    assert len(new) == 8
    landed = {(t["Model"], t["Model-Version"], t["Environment"]) for t in (trailers_of(origin.remote, s) for s in new)}
    assert landed == set(jobs)
    for (code, stdout, _), clone in zip(results, clones):  # each process reports the sha that landed
        sha = stdout.split("pushed ")[-1].split()[0]
        assert sha in new
    _chain_is_consistent(origin)


def _deployed_version(origin: PromoRepo, model: str, env: str) -> str | None:
    path = f"refs/heads/main:environments/{env}/release/{model}.yaml"
    res = subprocess.run(["git", "show", path], cwd=origin.remote, capture_output=True, text=True)
    if res.returncode != 0:
        return None
    return yaml.safe_load(res.stdout)["metadata"]["annotations"]["gitops-tool.io/model-version"]


def _race(origin: PromoRepo, clones: list[PromoRepo], targets: list[str], env: str = "dev"
          ) -> tuple[list[tuple[int, str, str]], int]:
    for c in clones:
        c.sync()
    before = origin.remote_count()
    results = _wait([_spawn(c, f"model-a/{v}", "--env", env) for c, v in zip(clones, targets)])
    return results, origin.remote_count() - before


def _pushed(out: str) -> bool:
    """The commit+push step ran ok (a skipped run's later steps may say "nothing pushed")."""
    return re.search(r"(?m)^\s*ok\s+commit\+push\s", out) is not None


def test_racing_the_same_version_commits_once(origin, extra_models, tmp_path):
    clones = _clones(origin, tmp_path / "race", 2)
    versions = extra_models["model-a"]
    for round_no in range(4):
        target = versions[round_no % 2]  # alternate, so every round has something to do
        results, added = _race(origin, clones, [target, target])
        assert all(code == 0 for code, _, _ in results), results
        assert added == 1, (round_no, results)
        outcomes = sorted("pushed" if _pushed(out) else "skipped" for _, out, _ in results)
        assert outcomes == ["pushed", "skipped"], results
        skipped = next(out for _, out, _ in results if not _pushed(out))
        assert "already promoted" in skipped or "no change" in skipped
    _chain_is_consistent(origin)


def test_racing_different_versions_never_overwrites_silently(origin, extra_models, tmp_path):
    clones = _clones(origin, tmp_path / "race", 2)
    versions = extra_models["model-a"]
    seen: Counter[str] = Counter()
    for round_no in range(4):
        current = _deployed_version(origin, "model-a", "dev")
        pool = [v for v in versions if v != current]  # three versions, none of them deployed
        targets = [pool[round_no % 3], pool[(round_no + 1) % 3]]
        results, added = _race(origin, clones, targets)
        codes = sorted(code for code, _, _ in results)
        if added == 1:
            # The loser saw the branch move under it: a clear conflict, nothing committed.
            assert codes == [0, 1], results
            loser = next(err for code, _, err in results if code == 1)
            assert "conflict: model-a in dev moved to version" in loser and "nothing committed" in loser
            seen["conflict"] += 1
        else:
            # Sequential after all (the second read the first's commit): two honest promotions.
            assert added == 2 and codes == [0, 0], results
            seen["sequential"] += 1
        assert all("Traceback" not in err for _, _, err in results)
    _chain_is_consistent(origin)
    print(f"different-version races: {dict(seen)}")
