"""Receiver settings, and where the shared secret(s) come from (never a CLI argument)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gitops_tool.errors import GitopsError

SECRET_ENV = "GITOPS_TOOL_WEBHOOK_SECRET"
TOKEN_ENV = "GITHUB_TOKEN"
MODES = ("dispatch", "promote")
MIB = 1024 * 1024
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class ReceiverSettings:
    secrets: tuple[str, ...]            # several during a rotation: any one may sign
    config_path: Path                   # gitops.yaml: which aliases map to which env
    host: str = "0.0.0.0"
    port: int = 8080
    mode: str = "dispatch"              # dispatch | promote
    repo_url: str | None = None         # promote: the GitOps repo cloned per job
    branch: str | None = None           # promote: its branch (default main)
    tracking_uri: str | None = None     # promote: the registry the engine resolves against
    github_repo: str | None = None      # dispatch: "owner/name"
    github_api_url: str = "https://api.github.com"
    github_token: str | None = None     # dispatch: defaults to $GITHUB_TOKEN
    max_body: int = MIB
    timestamp_window: float = 300.0     # seconds either side of now
    queue_size: int = 100
    workers: int = 2
    max_attempts: int = 5               # per job, first try included
    backoff: float = 1.0                # first retry delay; doubles, capped by max_backoff
    max_backoff: float = 60.0
    replay_capacity: int = 100_000      # delivery ids remembered (bounded memory)
    shutdown_timeout: float = 30.0      # how long an in-flight job may finish on SIGTERM
    drift_interval: float = 120.0       # promote: seconds between registry/Git drift checks (0: off)

    def check(self) -> None:
        """Refuse settings ``serve`` cannot run with; the message names the fix."""
        self.check_common()
        if self.mode not in MODES:
            raise GitopsError(f"webhook receiver: mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.mode == "promote" and not self.repo_url:
            raise GitopsError("webhook receiver: promote mode needs --repo-url (the GitOps repo to clone)")
        if self.mode == "dispatch":
            if not self.github_repo or not _REPO.match(self.github_repo):
                raise GitopsError(
                    f"webhook receiver: dispatch mode needs --github-repo OWNER/NAME, got {self.github_repo!r}"
                )
            if not self.token():
                raise GitopsError(f"webhook receiver: dispatch mode needs ${TOKEN_ENV} (a token allowed to "
                                  "send repository_dispatch)")

    def check_common(self) -> None:
        """What any receiver needs, whatever its handler: a secret and sane limits."""
        if not any(s for s in self.secrets):
            raise GitopsError(
                "webhook receiver: no shared secret",
                hint=f"pass --secret-file FILE or set {SECRET_ENV}; unsigned deliveries are refused",
            )
        for name in ("max_body", "queue_size", "workers", "max_attempts"):
            if getattr(self, name) < 1:
                raise GitopsError(f"webhook receiver: {name} must be at least 1, got {getattr(self, name)}")
        if self.timestamp_window <= 0:
            raise GitopsError("webhook receiver: timestamp_window must be positive")

    def token(self) -> str | None:
        return self.github_token or os.environ.get(TOKEN_ENV) or None


def load_secrets(secret_file: Path | None = None, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Secrets from a file (one per line: current first, then the ones being rotated out) or the env.

    A file wins over the environment. Blank lines and surrounding whitespace are ignored;
    no secret at all raises, because the receiver must not run unauthenticated.
    """
    env = os.environ if environ is None else environ
    if secret_file is not None:
        try:
            text = Path(secret_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise GitopsError(f"{secret_file}: cannot read the webhook secret: {exc}") from None
        source = str(secret_file)
    else:
        text, source = env.get(SECRET_ENV, ""), f"${SECRET_ENV}"
    secrets = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not secrets:
        raise GitopsError(
            f"webhook receiver: no shared secret in {source}",
            hint=f"pass --secret-file FILE or set {SECRET_ENV} (never on the command line)",
        )
    return secrets
