"""A small MLflow registry client over REST.

The promotion path must not pay the 3 s ``import mlflow``, so this speaks the
tracking server's REST API (over registry.transport, the standard library's http.client) and
honours the same client environment variables as MLflow's own client.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from gitops_tool.errors import GitopsError
from gitops_tool.registry import transport
from gitops_tool.registry.refs import ModelRef
from gitops_tool.registry.webhook_calls import WebhookCalls

API = "/api/2.0/mlflow"
_RETRY_STATUS = {429, 500, 502, 503, 504}
_TRUE = {"1", "true", "yes", "on"}
TIMEOUT_ENV = "GITOPS_TOOL_REGISTRY_TIMEOUT"
DEFAULT_TIMEOUT = 10.0


def _timeout_from_env() -> float:
    """Per-request timeout in seconds: $GITOPS_TOOL_REGISTRY_TIMEOUT, else 10 s.

    With 3 retries the worst case against a registry that never answers is
    4 x timeout + 3.5 s of backoff (43.5 s by default)."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value <= 600:
        raise GitopsError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds in (0, 600]")
    return value


@dataclass
class ModelVersion:
    """One registered model version as the registry reports it."""

    name: str
    version: str
    run_id: str | None
    source: str | None
    status: str
    aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    creation_timestamp: int | None = None
    user_id: str | None = None         # who created the version (set only when the registry runs with auth)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelVersion:
        created = data.get("creation_timestamp")
        return cls(
            name=data["name"],
            version=str(data["version"]),
            run_id=data.get("run_id") or None,
            source=data.get("source") or None,
            status=data.get("status", "UNKNOWN"),
            aliases=list(data.get("aliases", [])),
            tags={t["key"]: t.get("value", "") for t in data.get("tags", [])},
            creation_timestamp=int(created) if created is not None else None,
            user_id=data.get("user_id") or None,
        )


def _describe(exc: transport.TransportError, timeout: float) -> str:
    """A short cause: the timeout, or why the connection failed."""
    if isinstance(exc, transport.Timeout):
        return f"no answer within {timeout:g} s"
    return f"cannot connect: Failed to establish a new connection: {exc}"


class RegistryClient(WebhookCalls):
    """REST client for one MLflow tracking server (registry, runs, webhooks)."""

    def __init__(
        self, tracking_uri: str, *, timeout: float | None = None, retries: int = 3, backoff: float = 0.5
    ):
        uri = (tracking_uri or "").strip().rstrip("/")
        if not uri.startswith(("http://", "https://")):
            raise GitopsError(
                f"MLflow tracking URI {tracking_uri!r} is not an http(s) URL",
                hint="promotions talk to a tracking server: use http://HOST:PORT",
            )
        self.tracking_uri = uri
        self.timeout = timeout if timeout is not None else _timeout_from_env()
        self.retries = max(0, retries)
        self.backoff = backoff
        self.attempts = 0  # requests sent so far, for diagnostics and tests
        self.session = self._make_session()

    @staticmethod
    def _make_session() -> transport.Session:
        env = os.environ
        session = transport.Session()
        user, password = env.get("MLFLOW_TRACKING_USERNAME"), env.get("MLFLOW_TRACKING_PASSWORD")
        token = env.get("MLFLOW_TRACKING_TOKEN")
        # Same precedence as MLflow's client: basic auth wins over a token.
        if user and password:
            session.auth = (user, password)
        elif token:
            session.headers["Authorization"] = f"Bearer {token}"
        if env.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() in _TRUE:
            session.verify = False
        elif env.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
            session.verify = env["MLFLOW_TRACKING_SERVER_CERT_PATH"]
        return session

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------

    def _request(
        self, method: str, path: str, what: str, *, idempotent: bool = True, retries: int | None = None,
        **kwargs: Any
    ) -> dict[str, Any]:
        """Send one API call with bounded retries; ``what`` names the object for errors.

        Non-idempotent calls (webhook creation) are retried only when the
        connection failed, never after the server may have acted on them.
        """
        url = f"{self.tracking_uri}{path}"
        problem, retry_after = "", None
        for attempt in range((self.retries if retries is None else retries) + 1):
            if attempt:
                time.sleep(self._delay(attempt, retry_after))
            self.attempts += 1
            try:
                resp = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except transport.TLSError as exc:
                raise GitopsError(
                    f"TLS error talking to MLflow at {self.tracking_uri} ({what}): {exc}",
                    hint="set MLFLOW_TRACKING_SERVER_CERT_PATH to the CA bundle",
                ) from exc
            except (transport.ConnectError, transport.Timeout) as exc:
                problem = _describe(exc, self.timeout)
                ambiguous = isinstance(exc, transport.Timeout) and exc.read
                if ambiguous and not idempotent:
                    break
                continue
            if resp.status_code in _RETRY_STATUS:
                problem = f"HTTP {resp.status_code} {resp.reason or ''}".rstrip()
                retry_after = resp.headers.get("Retry-After")
                if not idempotent:
                    break
                continue
            return self._parse(resp, what)
        raise GitopsError(
            f"MLflow registry at {self.tracking_uri} failed for {what}: "
            f"{problem} (gave up after {attempt + 1} attempts)",
            retryable=True,
            hint="check that the tracking server is up and MLFLOW_TRACKING_URI is right",
        )

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        """Exponential backoff; a numeric Retry-After (429/503) is honoured up to 30 s."""
        delay = self.backoff * 2 ** (attempt - 1)
        if retry_after and retry_after.isdigit():
            delay = max(delay, min(float(retry_after), 30.0))
        return delay

    def _parse(self, resp: transport.Response, what: str) -> dict[str, Any]:
        try:
            body = resp.json() if resp.content else {}
        except ValueError:
            body = None
        if resp.ok and isinstance(body, dict):
            return body
        if resp.ok:
            raise GitopsError(
                f"{self.tracking_uri} answered {resp.request.path_url} with non-JSON "
                f"({what}); is this an MLflow tracking server?"
            )
        raise self._http_error(resp, body if isinstance(body, dict) else {}, what)

    def _http_error(self, resp: transport.Response, body: dict[str, Any], what: str) -> GitopsError:
        code = body.get("error_code", "")
        message = body.get("message") or resp.text[:300].strip()
        # A missing alias comes back as INVALID_PARAMETER_VALUE "... alias X not found."
        missing = code == "INVALID_PARAMETER_VALUE" and "not found" in message.lower()
        if code == "RESOURCE_DOES_NOT_EXIST" or missing:
            return GitopsError(f"{what} not found in MLflow at {self.tracking_uri}: {message}")
        if resp.status_code == 404 and not code:  # MLflow always sends an error_code
            return GitopsError(
                f"{self.tracking_uri} has no {resp.request.path_url.split('?')[0]} ({what}): "
                "is this an MLflow tracking server?",
                hint="the tracking URI must be the server root, without /api or a UI path",
            )
        if code == "INVALID_PARAMETER_VALUE":
            return GitopsError(f"invalid request for {what} at {self.tracking_uri}: {message}")
        hint = None
        if resp.status_code == 401:
            hint = "set MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN"
        elif resp.status_code == 403:
            hint = ("the credentials lack permission, or the server's --allowed-hosts "
                    "does not include this host name")
        return GitopsError(
            f"MLflow at {self.tracking_uri} refused {what}: HTTP {resp.status_code} "
            f"{code} {message}".rstrip(),
            hint=hint,
        )

    # -- registry --------------------------------------------------------------

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        what = f"model {name!r} alias {alias!r}"
        body = self._request(
            "GET", f"{API}/registered-models/alias", what, params={"name": name, "alias": alias}
        )
        return ModelVersion.from_json(body["model_version"])

    def get_version(self, name: str, version: str | int) -> ModelVersion:
        what = f"model {name!r} version {version}"
        body = self._request(
            "GET", f"{API}/model-versions/get", what, params={"name": name, "version": str(version)}
        )
        return ModelVersion.from_json(body["model_version"])

    def resolve(self, ref: ModelRef) -> ModelVersion:
        """Resolve a reference to a READY model version."""
        if ref.alias:
            mv = self.get_version_by_alias(ref.model, ref.alias)
        elif ref.version:
            mv = self.get_version(ref.model, ref.version)
        else:
            raise GitopsError(f"model reference {ref.model!r} has neither alias nor version")
        if mv.status != "READY":
            raise GitopsError(
                f"model {mv.name!r} version {mv.version} (from {ref}) is {mv.status}, not READY",
                retryable=mv.status == "PENDING_REGISTRATION",
            )
        return mv

    def get_model_aliases(self, name: str) -> dict[str, str]:
        body = self._request(
            "GET", f"{API}/registered-models/get", f"model {name!r}", params={"name": name}
        )
        aliases = body.get("registered_model", {}).get("aliases", [])
        return {a["alias"]: str(a["version"]) for a in aliases}

    def search_model_aliases(self, page_size: int = 1000, max_pages: int = 20) -> dict[str, dict[str, str]]:
        """Every registered model's aliases in a few calls (registered-models/search pages);
        raises GitopsError when the registry has more than ``max_pages`` pages of models."""
        found: dict[str, dict[str, str]] = {}
        token = None
        for _ in range(max_pages):
            params = {"max_results": page_size} | ({"page_token": token} if token else {})
            body = self._request("GET", f"{API}/registered-models/search", "registered models", params=params)
            for model in body.get("registered_models", []):
                found[model["name"]] = {a["alias"]: str(a["version"]) for a in model.get("aliases", [])}
            token = body.get("next_page_token")
            if not token:
                return found
        raise GitopsError(f"more than {max_pages * page_size} registered models: asking per model instead")

    def get_run_metrics(self, run_id: str) -> dict[str, float]:
        """Latest value of each metric of a run."""
        body = self._request("GET", f"{API}/runs/get", f"run {run_id!r}", params={"run_id": run_id})
        latest: dict[str, tuple[int, int, float]] = {}
        for m in body.get("run", {}).get("data", {}).get("metrics", []):
            key = (int(m.get("step", 0)), int(m.get("timestamp", 0)), float(m["value"]))
            if m["key"] not in latest or key[:2] >= latest[m["key"]][:2]:
                latest[m["key"]] = key
        return {k: v[2] for k, v in latest.items()}

    def get_run_user(self, run_id: str) -> str | None:
        """The run's user_id: who the training client said it was (MLflow does not verify it)."""
        body = self._request("GET", f"{API}/runs/get", f"run {run_id!r}", params={"run_id": run_id})
        return (body.get("run", {}).get("info", {}).get("user_id")) or None

    def get_download_uri(self, name: str, version: str | int) -> str:
        what = f"model {name!r} version {version}"
        body = self._request(
            "GET", f"{API}/model-versions/get-download-uri", what,
            params={"name": name, "version": str(version)},
        )
        return body["artifact_uri"]

    def set_alias(self, name: str, alias: str, version: str | int) -> None:
        what = f"model {name!r} alias {alias!r} -> version {version}"
        payload = {"name": name, "alias": alias, "version": str(version)}
        self._request("POST", f"{API}/registered-models/alias", what, json=payload)

    def set_version_tag(self, name: str, version: str | int, key: str, value: str, *, retries: int = 1) -> None:
        """One POST; fewer retries than reads, because the caller (version_tags) must not stall a job."""
        what = f"model {name!r} version {version} tag {key!r}"
        payload = {"name": name, "version": str(version), "key": key, "value": value}
        self._request("POST", f"{API}/model-versions/set-tag", what, json=payload, retries=retries)

    def delete_alias(self, name: str, alias: str) -> None:
        what = f"model {name!r} alias {alias!r}"
        payload = {"name": name, "alias": alias}
        self._request("DELETE", f"{API}/registered-models/alias", what, json=payload)
