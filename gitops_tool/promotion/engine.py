"""The promotion pipeline: resolve → decide (hold, skip, gates) → edit → validate → commit → push (or PR).

The CLI, the webhook receiver and reconcile all call `promote`. It runs in a private tree on the
remote's tip (promotion.workspace). Every push the remote rejects makes the whole decision run again
on the new tip: the hold, the skip and the gates, and for automatic triggers the alias is resolved
again, so the newest registry state wins. Every failure raises GitopsError and leaves Git, the
registry and the user's checkout as they were.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gitops_tool.errors import GitopsError
from gitops_tool.gitrepo import CommitPlan, GitRepo, commit_and_push
from gitops_tool.kustomize.release import ReleaseState, read_release
from gitops_tool.kustomize.release_edit import ReleaseEdit
from gitops_tool.promotion import after_push, canary, commits, stage_policy, stage_tags
from gitops_tool.promotion.approval import Route, route
from gitops_tool.promotion.change import PUSH_ATTEMPTS
from gitops_tool.promotion.gates import run_gates
from gitops_tool.promotion.model import PromotionRequest, PromotionResult
from gitops_tool.promotion.overlay_edit import apply_edit, schema_dir_from_env, validate_env
from gitops_tool.promotion.provenance import provenance
from gitops_tool.promotion.resolve import Target, resolve
from gitops_tool.promotion.steps import Steps
from gitops_tool.promotion.workspace import Workspace, open_workspace
from gitops_tool.registry import RegistryClient, resolve_tracking_uri

if TYPE_CHECKING:
    from gitops_tool.gitrepo.warm import ClonePool

AUTOMATIC = ("webhook", "reconcile", "workflow")


def promote(req: PromotionRequest, *, branch: str | None = None, schema_dir: Path | None = None,
            clones: ClonePool | None = None) -> PromotionResult:
    with open_workspace(req.config_path, req.repo_url, branch, clones) as ws:
        result = promote_in(ws, req, schema_dir=schema_dir or schema_dir_from_env())
        if result.pushed and not result.pull_request:
            result.checkout = ws.sync_user()
        return result


def promote_in(ws: Workspace, req: PromotionRequest, *, schema_dir: Path | None = None) -> PromotionResult:
    uri = resolve_tracking_uri(req.tracking_uri, ws.cfg.mlflow.get("tracking_uri"))
    with RegistryClient(uri) as client, stage_tags.reporting(client, enabled=not req.dry_run):
        return _Promotion(ws, req, client, schema_dir).run()


def new_chain(current: ReleaseState | None, version: str) -> tuple:
    """The chain after deploying ``version`` over ``current``: the current one goes on top."""
    if current is None or current.deployed is None:
        return ()
    if current.version == version:
        return current.before
    return (current.deployed, *current.before)


class _Promotion:
    def __init__(self, ws: Workspace, req: PromotionRequest, client: RegistryClient, schema_dir: Path | None):
        self.ws, self.req, self.client, self.schema_dir = ws, req, client, schema_dir
        self.steps = Steps()
        self.target: Target | None = None
        self.current: ReleaseState | None = None
        self.attempt = 0
        self.route = Route(pull_request=False)

    def run(self) -> PromotionResult:
        with self.steps.run("resolve") as step:
            self._resolve()
            step.detail = f"{self.target.model.name} version {self.target.version.version} -> {self.target.env}"
        self.result = PromotionResult(env=self.target.env, model=self.target.model.name, alias=None,
                                      from_version=None, to_version="", image=None, steps=self.steps.items)
        self.route = route(self.ws.cfg, self.target.env, self.req)  # approval: direct | pull_request
        try:
            result = self._decide_and_land()
        except GitopsError as exc:
            after_push.refused(self.ws.cfg, self.client, self.req, self.result, self.steps, exc)
            raise
        return after_push.finish(self.ws.cfg, self.client, self.req, result, self.steps)

    def _decide_and_land(self) -> PromotionResult:
        reason = self._decide(record=True)
        if reason == "already promoted" and self.route.pull_request and self.req.push and not self.req.dry_run:
            from gitops_tool.promotion.pull_request import close_stale_pull_request

            with self.steps.run("close stale pull request") as step:
                closed = close_stale_pull_request(self.ws, self.target, f"@{self.target.ref.alias or 'the ref'} "
                                                  f"names version {self.target.version.version}, deployed already")
                step.status, step.detail = ("ok", f"closed {closed}") if closed else ("skipped", "none open")
        if reason:
            return self._skipped(reason)
        if self.req.dry_run:
            return self._dry_run()
        if self.route.pull_request and self.req.push:
            from gitops_tool.promotion.pull_request import open_pull_request

            return open_pull_request(self.ws, self.req, self.target, self.result, self.steps, self.apply)
        with self.steps.run("commit+push") as step:
            pushed = commit_and_push(self.ws.repo, remote=self.ws.remote, branch=self.ws.branch, apply=self.apply,
                                     push=self.req.push, attempts=PUSH_ATTEMPTS)
            self.result.commit, self.result.pushed = pushed.commit, pushed.pushed
            if pushed.commit is None:
                self.result.skipped = self.result.skipped or pushed.skipped or "no change"
                step.status, step.detail = "skipped", self.result.skipped
            else:
                step.detail = f"{pushed.commit[:12]} after {pushed.attempts} attempt(s)"
        if self.result.commit and not self.result.pushed:
            self.result.kept_on = self.ws.keep_unpushed(self.target.env, self.target.model.name, self.result.commit)
        return self.result

    def _resolve(self) -> None:
        req = self.req
        self.target = resolve(self.ws.cfg, self.client, req.ref, env=req.env, image_tag=req.image_tag)

    def _decide(self, *, record: bool) -> str | None:
        """Hold, skip and gates against the release files of the tree as it is now."""
        target = self.target
        self.current = current = read_release(self.ws.cfg.env_dir(target.env)).get(target.model.name)
        r = self.result
        r.env, r.model, r.alias = target.env, target.model.name, target.ref.alias
        r.from_version, r.to_version = (current.version if current else None), target.version.version
        r.image = target.image_text or target.storage_uri
        stage_policy.check_request(self.ws.cfg, target, current, self.req)
        if reason := _skip_reason(target, current, self.req):
            return reason
        if reason := stage_policy.hold_back(self.ws.cfg, target, current, self.req, self.steps if record else None):
            return reason
        if record:
            with self.steps.run("gates") as step:
                step.detail = "; ".join(self._gates()) or "none configured"
        else:
            self._gates()
        return None

    def _gates(self) -> list[str]:
        target, current = self.target, self.current
        return run_gates(
            gates=target.model.gates, client=self.client, model_name=target.version.name, env=target.env,
            version=target.version.version, run_id=target.version.run_id,
            deployed_version=current.version if current else None,
            versions_run_in=lambda env: _versions_run_in(self.ws, target.model.name, env),
        )

    def _skipped(self, reason: str) -> PromotionResult:
        self.result.skipped = reason
        self.steps.skip("edit", reason)
        return self.result

    def apply(self, repo: GitRepo) -> CommitPlan | None:
        """The edit commit_and_push runs; from the second attempt on, on a new tip, decided afresh."""
        self.attempt += 1
        if self.attempt > 1 or repo.caught_up:  # a new tip: a pooled clone's catch_up may move there too
            if self.req.trigger in AUTOMATIC:
                self._resolve()  # the newest registry state wins
            if reason := self._decide(record=False):
                self.result.skipped = reason
                return None
        target, env_dir = self.target, self.ws.cfg.env_dir(self.target.env)
        edit = ReleaseEdit(target.model.name, target.version.version, image=target.image,
                           storage_uri=target.storage_uri, clear_hold=self.req.force,
                           before=new_chain(self.current, target.version.version))
        edit = canary.shape(edit, self.current, self.req)
        paths, self.result.diff = apply_edit(env_dir, edit, self.ws.repo.root)
        if not paths:
            return None
        try:
            validate_env(target.env, env_dir, self.schema_dir)
        except BaseException:
            repo.restore(paths)  # commit_and_push only cleans up after apply() returns a plan
            raise
        return CommitPlan(paths, *self._message())

    def _message(self) -> tuple[str, str, dict[str, str]]:
        req, target, version = self.req, self.target, self.target.version
        previous = self.current.version if self.current else None
        subject = commits.subject("promote", target.env, target.model.name, previous, version.version,
                                  target.ref.alias)
        body = [f"Source: {version.source}"] if version.source else []
        delivery = req.delivery_id
        if delivery and req.event_version and req.event_version != version.version:
            # The alias moved again since that event: this commit enacts the registry's newer state.
            body.append(f"Delivery {delivery} named version {req.event_version}; @{target.ref.alias} "
                        f"resolved to {version.version} when this commit was made.")
            delivery = None
        return stage_policy.message(req, subject, "\n".join(body), commits.trailers(
            model=target.model.name, env=target.env, version=version.version, previous=previous,
            alias=target.ref.alias, run_id=version.run_id, image=target.image_text,
            storage_uri=target.storage_uri, trigger=req.trigger, delivery_id=delivery,
            coalesced=req.coalesced_deliveries,
        ) | provenance(req, version, self.client) | self.route.trailers)

    def _dry_run(self) -> PromotionResult:
        release_dir = self.ws.cfg.env_dir(self.target.env) / "release"
        with self.steps.run("edit+validate (dry run)"):
            try:
                self.apply(self.ws.repo)
            finally:
                self.ws.repo.restore([release_dir])
        self.result.skipped = self.result.skipped or "dry run"
        return self.result


def _versions_run_in(ws: Workspace, model: str, env: str) -> set[str]:
    state = read_release(ws.cfg.env_dir(env)).get(model)
    return state.versions_run() if state else set()


def _skip_reason(target: Target, current: ReleaseState | None, req: PromotionRequest) -> str | None:
    if current and current.hold:
        if req.trigger in AUTOMATIC:
            return f"held: {current.hold}"
        if not req.force:
            raise GitopsError(
                f"{target.model.name} in {target.env} is on hold ({current.hold}); nothing committed",
                hint=f"run `gitops-tool release {target.model.name} --env {target.env}`, or pass --force",
            )
    if current and matches(current, target):
        return "already promoted"
    return None


def matches(state: ReleaseState, target: Target) -> bool:
    same_artifact = state.image == target.image_text if target.image else state.storage_uri == target.storage_uri
    return state.version == target.version.version and same_artifact and not state.hold
