"""`gitops-tool doctor --approval`: the GitHub and MLflow settings review needs, and a live check of them.

Approval only means something when the repository enforces it: GitHub branch protection (or a ruleset)
must require an approving review on repo.branch, and the identity that promotes must not be able to
bypass it. And whoever can move an alias in MLflow starts a promotion, so the registry needs auth.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from gitops_tool.config import Config
from gitops_tool.errors import GitopsError
from gitops_tool.promotion.github_api import GitHub, repo_slug

ACTIONS_BOT = "github-actions"  # the app behind github-actions[bot] (the workflows' GITHUB_TOKEN)


@dataclass(frozen=True)
class Finding:
    status: str   # ok | problem | note | unknown
    what: str
    detail: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def _envs(cfg: Config, approval: str) -> list[str]:
    return [name for name, env in cfg.environments.items() if env.approval == approval]


def settings(cfg: Config) -> list[str]:
    """The settings approval needs, as lines of documentation (doctor prints them offline)."""
    reviewed, direct = _envs(cfg, "pull_request"), _envs(cfg, "direct")
    if not reviewed:
        return ["no environment has approval: pull_request: every promotion lands on "
                f"{cfg.branch} directly; set environments.<env>.approval to require review"]
    slug = cfg.github_repository or "<owner>/<name>"
    lines = [
        f"promotions into {', '.join(reviewed)} open pull requests in {slug}; they land only when merged.",
        f"GitHub, branch protection rule (or ruleset) on {cfg.branch}:",
        "  - Require a pull request before merging, with at least 1 required approval",
        "  - Do not allow bypassing the above settings; no bypass allowance for the identity that promotes "
        "(the receiver's token user, github-actions[bot])",
        "  - Dismiss stale pull request approvals when new commits are pushed (a newer alias move replaces "
        "the pull request's commit)",
        f"  - optional: CODEOWNERS for {', '.join(f'environments/{e}/' for e in reviewed)} and "
        "Require review from Code Owners",
        "GitHub, Actions > General > Workflow permissions: allow GitHub Actions to create pull requests "
        "(promote.yaml opens them with GITHUB_TOKEN), or give the workflow a GitHub App token",
        f"the receiver opens them with the token in Secret gitops-git-credentials (pull requests: write, "
        f"contents: write on {slug})",
    ]
    if direct:
        lines.append(f"note: {', '.join(direct)} take promotions directly on the same branch, and branch "
                     f"protection covers a whole branch: with the rule above their pushes are refused (GH006). "
                     f"Give them approval: pull_request too, or let the promoting identity bypass the rule (then "
                     f"review of {', '.join(reviewed)} rests on gitops-tool routing every promotion there through "
                     f"a pull request, and on CODEOWNERS)")
    lines += [
        "MLflow: moving an alias starts a promotion. Under `mlflow server --app-name basic-auth` setting an "
        "alias needs EDIT on the registered model, deleting one needs MANAGE (READ, the default, may not "
        "move aliases). The basic-auth edge alone lets every user who passes it move any alias.",
    ]
    return lines


def check_github(cfg: Config) -> list[Finding]:
    reviewed, direct = _envs(cfg, "pull_request"), _envs(cfg, "direct")
    if not reviewed:
        return [Finding("note", "approval", "no environment has approval: pull_request")]
    what = f"review required on {cfg.branch}"
    try:
        github = GitHub(repo_slug(cfg), os.environ.get("GITHUB_TOKEN"), timeout=10)
        protection = github.branch_protection(cfg.branch)
        rules = [] if protection else github.branch_rules(cfg.branch)
        login = github.token_login() if "GITHUB_TOKEN" in os.environ else None
    except GitopsError as exc:
        return [Finding("unknown", what, f"GitHub could not answer: {str(exc).splitlines()[0]}")]
    where = f"{github.slug} {cfg.branch}"
    if protection:
        return _classic(protection, where, {login, ACTIONS_BOT} - {None}, direct)
    pull_rules = [r for r in rules if r.get("type") == "pull_request"]
    if pull_rules:
        count = max(int((r.get("parameters") or {}).get("required_approving_review_count") or 0) for r in pull_rules)
        found = [Finding("ok" if count >= 1 else "problem", what,
                         f"a ruleset on {where} requires a pull request with {count} approving review(s)")]
        return found + [Finding("unknown", "bypass", "a ruleset's bypass list is readable by admins only "
                                                     "(GET /repos/{owner}/{repo}/rulesets/{id}): check that "
                                                     "the promoting identity is not on it")]
    return [Finding("problem", what, f"{where} has no branch protection and no ruleset requiring a pull request: "
                                     f"any identity with push access, the promoting one included, can deploy "
                                     f"{', '.join(reviewed)} without review")]


def _classic(protection: dict, where: str, bots: set[str], direct: list[str]) -> list[Finding]:
    reviews = protection.get("required_pull_request_reviews") or {}
    count = int(reviews.get("required_approving_review_count") or 0)
    out = [Finding("ok" if reviews and count >= 1 else "problem", "required review",
                   f"{where}: {count} approving review(s) required" if reviews
                   else f"{where} is protected but requires no pull request review")]
    allowed = reviews.get("bypass_pull_request_allowances") or {}
    names = {u.get("login") for u in allowed.get("users") or []} | {a.get("slug") for a in allowed.get("apps") or []}
    bypassing = sorted(bots & names)
    if bypassing and not direct:
        out.append(Finding("problem", "bot bypass", f"{', '.join(bypassing)} may bypass the required review "
                                                    f"on {where}: a promotion could reach it unreviewed"))
    elif bypassing:
        out.append(Finding("note", "bot bypass", f"{', '.join(bypassing)} may bypass the review on {where}; the "
                                                 f"direct environments ({', '.join(direct)}) need that, so review "
                                                 f"of the others rests on gitops-tool's routing"))
    else:
        out.append(Finding("ok", "bot bypass", f"the promoting identity ({', '.join(sorted(bots))}) is not "
                                               f"among the bypass allowances"))
    if not (protection.get("enforce_admins") or {}).get("enabled"):
        out.append(Finding("problem", "admins", f"{where}: administrators may bypass the rule (enable "
                                                "'Do not allow bypassing the above settings')"))
    if reviews and not reviews.get("dismiss_stale_reviews"):
        out.append(Finding("note", "stale approvals", "a newer alias move replaces the pull request's commit; "
                                                      "enable dismissal of stale approvals so an approval "
                                                      "covers what lands"))
    if direct and not bypassing:
        out.append(Finding("note", "direct environments", f"{', '.join(direct)} push to {where} directly; the "
                                                          "rule refuses those pushes (GH006) unless they use "
                                                          "approval: pull_request too"))
    return out


def check_registry_auth(uri: str) -> list[Finding]:
    """Does the registry of record ask who moves an alias? A note when it does not."""
    import requests

    api = f"{uri.rstrip('/')}/api/2.0/mlflow"
    try:
        anonymous = requests.get(f"{api}/registered-models/search", params={"max_results": 1}, timeout=10)
        user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
        current = requests.get(f"{api}/users/current", auth=(user, password) if user else None, timeout=10)
    except requests.RequestException as exc:
        return [Finding("unknown", "registry auth", f"{uri} unreachable: {exc}")]
    if anonymous.status_code == 200:
        return [Finding("note", "registry auth", f"{uri} has no auth: anyone who reaches it can move an alias, "
                                                 "and a moved alias starts a promotion. Put it behind the "
                                                 "basic-auth edge and run MLflow with --app-name basic-auth "
                                                 "(EDIT on a registered model moves its aliases)")]
    if current.status_code == 200:
        return [Finding("ok", "registry auth", f"{uri} runs MLflow's basic-auth: setting an alias needs EDIT on "
                                               "the registered model, deleting one needs MANAGE")]
    if current.status_code == 404:
        return [Finding("note", "registry auth", f"{uri} asks for credentials at the edge only: every user who "
                                                 "passes it may move any alias (MLflow's --app-name basic-auth "
                                                 "gives per-model EDIT/MANAGE permissions)")]
    return [Finding("ok", "registry auth", f"{uri} refuses requests without credentials "
                                           f"(HTTP {anonymous.status_code})")]
