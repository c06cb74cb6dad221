"""What `wait` saw: alias moved -> committed -> synced -> ready, and the tags it writes on the way.

- alias: `alias_at` from the version's `gitops.<env>` tag (the receiver records the webhook's
  timestamp); unknown for a manual promotion.
- committed: the committer time of the newest commit in environments/<env>.
- synced: the first poll that saw the Application Synced at a revision containing that commit.
- ready: the poll that saw everything live (Synced, Healthy, each InferenceService Ready).

synced and ready are as `wait` observed them, so they are late by up to one poll interval. At
synced and at ready it writes `synced` / `healthy` on each version it waited for (one tag write
per model each), carrying the commit and the times. A failed write is a warning, never a failure.
"""

from __future__ import annotations

import subprocess
import time

from gitops_tool.cluster.status import EnvLive
from gitops_tool.promotion import version_tags


_iso, _epoch = version_tags.iso, version_tags.epoch


class Timeline:
    def __init__(self, cfg, env: str, wanted: dict[str, str | None], client=None):
        self.cfg, self.env, self.client = cfg, env, client
        self.versions = {cfg.model(m).registered_model: v for m, v in wanted.items() if v}
        self.committed_at: float | None = None
        self.synced_at: float | None = None
        self.ready_at: float | None = None
        self.commit: str | None = None
        self.warnings: list[str] = []
        self.recorded = self._recorded()
        self.alias_at = _epoch(self.recorded.get("alias_at"))

    def _recorded(self) -> dict[str, str]:
        """The `gitops.<env>` tag the promotion wrote on the first version waited for ({} if none)."""
        if self.client is None:
            return {}
        for model, version in self.versions.items():
            try:
                found = self.client.get_version(model, version)
            except Exception as exc:  # noqa: BLE001 - the times are a report; a registry problem only hides one
                self.warnings.append(f"registry: {str(exc).splitlines()[0]}; no alias time, no synced/healthy tags")
                self.client = None
                return {}
            return version_tags.parse(found.tags, self.env) or {}
        return {}

    def observe(self, state: EnvLive) -> None:
        """Called with every poll's state."""
        if state.git_revision and state.git_revision != self.commit:
            self.commit, self.committed_at = state.git_revision, _commit_time(self.cfg.root, state.git_revision)
            if self.recorded.get("commit") == self.commit:  # the promotion's own stamp has sub-second precision
                self.committed_at = _epoch(self.recorded.get("updated")) or self.committed_at
        if self.synced_at is None and state.app.found and state.app.sync == "Synced" and state.revision_live:
            self.synced_at = time.time()
            self._record("synced")
        if state.live and self.ready_at is None:
            self.ready_at = time.time()
            self._record("healthy")

    def _record(self, state: str) -> None:
        if self.client is None:
            return
        url = version_tags.commit_url(self.cfg.repo_url, self.commit)
        for model, version in self.versions.items():
            failed = version_tags.record(self.client, model, version, self.env, state, commit=self.commit,
                                         commit_url=url, alias_at=_iso(self.alias_at),
                                         synced_at=_iso(self.synced_at), ready_at=_iso(self.ready_at))
            if failed:
                self.warnings.append(f"could not record {state} on {model} version {version}: {failed}")

    def to_json(self) -> dict:
        stamps = {"alias": self.alias_at, "committed": self.committed_at, "synced": self.synced_at,
                  "ready": self.ready_at}
        return {name: _iso(ts) for name, ts in stamps.items()} | {"seconds": self.seconds()}

    def seconds(self) -> dict[str, float | None]:
        """Each stage's duration from the one before it (None where a stamp is unknown)."""
        def gap(a: float | None, b: float | None) -> float | None:
            return round(b - a, 3) if a is not None and b is not None else None

        return {"alias_to_committed": gap(self.alias_at, self.committed_at),
                "committed_to_synced": gap(self.committed_at, self.synced_at),
                "synced_to_ready": gap(self.synced_at, self.ready_at)}

    def line(self) -> str:
        s = self.seconds()

        def fmt(value: float | None) -> str:
            return "?" if value is None else f"{value:.1f}s"

        return (f"alias -> committed {fmt(s['alias_to_committed'])} -> synced {fmt(s['committed_to_synced'])} "
                f"-> ready {fmt(s['synced_to_ready'])} (synced and ready as polled)")


def _commit_time(root, sha: str) -> float | None:
    res = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%ct", sha], capture_output=True, text=True,
                         timeout=30)
    return float(res.stdout.strip()) if res.returncode == 0 and res.stdout.strip() else None
