"""`status` with many models: one registry search instead of a GET per model, the same rows either way.

Real parts: a real `mlflow server` (the module's registry), a project made by `init` and pushed
to a bare remote, the real CLI."""

from __future__ import annotations

import json

from gitops_tool.errors import GitopsError
from gitops_tool.promotion.status import collect
from gitops_tool.promotion.tip_view import open_tip_view
from gitops_tool.registry import RegistryClient
from tests.promotion_fixtures import WINE, add_model_to_config, make_repo, registry  # noqa: F401

EXTRA = [f"extra-{i}" for i in range(5)]


class PerModelOnly(RegistryClient):
    """The same real client, with the bulk search failing: every model is asked on its own."""

    calls = 0

    def search_model_aliases(self, *a, **k):
        raise GitopsError("search refused")

    def get_model_aliases(self, name):
        PerModelOnly.calls += 1
        return super().get_model_aliases(name)


def _config(text: str) -> str:
    for name in [*EXTRA, "never-registered"]:
        text = add_model_to_config(text, name)
    return text


def test_many_models_one_search_and_the_same_rows_as_asking_each(tmp_path, registry):
    for name in EXTRA:
        registry.add_model(name)
    registry.set_alias("candidate", registry.v1)
    registry.set_alias("champion", registry.v2, model=EXTRA[2])
    repo = make_repo(tmp_path, registry.url, edit_config=_config)
    with open_tip_view(repo.root / "gitops.yaml") as view:
        with RegistryClient(registry.url) as client:
            bulk, problem = collect(view.cfg, client)
            asked = client.attempts
        with PerModelOnly(registry.url) as client:
            each, each_problem = collect(view.cfg, client)
    assert [r.to_json() for r in bulk] == [r.to_json() for r in each]
    assert problem is None and each_problem is None
    assert asked == 2  # one search page, plus the one model the search did not return
    assert PerModelOnly.calls == 7
    rows = {(r.model, r.env): r for r in bulk}
    assert rows[(WINE, "dev")].aliases == {"candidate": registry.v1}
    assert rows[(EXTRA[2], "prod")].aliases == {"champion": registry.v2} and rows[(EXTRA[2], "prod")].drift
    assert "not found" in rows[("never-registered", "dev")].error
    res = repo.cli("status", "-o", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["rows"] == [r.to_json() for r in bulk]
