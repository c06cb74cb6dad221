"""A small HTTP(S) client on the standard library, for the registry's few REST calls.

`requests` cost ~60 ms of every CLI start for what the registry client needs: a keep-alive
connection per host, basic or bearer auth, a CA bundle or no verification, query parameters, JSON
bodies, redirects and the proxy environment variables. This module does that and no more:
  * TLS: the CA bundle `verify` names (file or directory), else certifi's bundle when installed
    (what requests used), else the system store; `verify=False` turns checking off.
  * Proxies: HTTP(S)_PROXY / ALL_PROXY / NO_PROXY as requests reads them (https through CONNECT).
  * Redirects: up to 10; 301/302/303 turn a POST into a GET as browsers and requests do;
    credentials are dropped when a redirect leaves the host.
Errors are ConnectError, Timeout (``read`` says whether the request may have been received) and
TLSError, all TransportError.
"""

from __future__ import annotations

import base64
import http.client
import json as jsonlib
import os
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

MAX_REDIRECTS = 10


class TransportError(Exception):
    pass


class ConnectError(TransportError):
    pass


class Timeout(TransportError):
    def __init__(self, message: str, *, read: bool):
        super().__init__(message)
        self.read = read


class TLSError(TransportError):
    pass


@dataclass
class Request:
    method: str
    url: str

    @property
    def path_url(self) -> str:
        parts = urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


@dataclass
class Response:
    status_code: int
    reason: str
    headers: http.client.HTTPMessage
    content: bytes
    request: Request
    url: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


@dataclass
class Session:
    auth: tuple[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    verify: bool | str = True
    _conns: dict[tuple, http.client.HTTPConnection] = field(default_factory=dict, repr=False)

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    def request(self, method: str, url: str, *, timeout: float, params: dict | None = None,
                json: Any = None) -> Response:
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        body = None if json is None else jsonlib.dumps(json).encode()
        host = urlsplit(url).netloc
        for _ in range(MAX_REDIRECTS + 1):
            resp = self._send(method, url, body, timeout, with_auth=urlsplit(url).netloc == host)
            location = resp.headers.get("Location")
            if resp.status_code not in (301, 302, 303, 307, 308) or not location:
                return resp
            url = urljoin(url, location)
            code = resp.status_code
            if (code in (302, 303) and method != "HEAD") or (code == 301 and method == "POST"):
                method, body = "GET", None
        raise ConnectError(f"more than {MAX_REDIRECTS} redirects")

    def _send(self, method: str, url: str, body: bytes | None, timeout: float, *, with_auth: bool) -> Response:
        parts = urlsplit(url)
        headers = {"User-Agent": "gitops-tool", "Accept": "*/*", "Accept-Encoding": "identity", **self.headers}
        if not with_auth:
            headers.pop("Authorization", None)
        elif self.auth:
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        key, conn, target = self._connection(parts, timeout)
        path = parts.path or "/"
        target = target or (path + (f"?{parts.query}" if parts.query else ""))
        sent = False
        try:
            conn.request(method, target, body=body, headers=headers)
            sent = True
            raw = conn.getresponse()
            content = raw.read()
        except ssl.SSLError as exc:
            self._drop(key)
            raise TLSError(str(exc)) from exc
        except (socket.timeout, TimeoutError) as exc:
            self._drop(key)
            raise Timeout(f"timed out after {timeout:g} s", read=sent) from exc
        except (OSError, http.client.HTTPException) as exc:
            self._drop(key)
            raise ConnectError(_reason(exc)) from exc
        if raw.will_close:
            self._drop(key)
        return Response(raw.status, raw.reason or "", raw.headers, content, Request(method, url), url)

    def _drop(self, key: tuple) -> None:
        conn = self._conns.pop(key, None)
        if conn is not None:
            conn.close()

    def _connection(self, parts, timeout: float) -> tuple[tuple, http.client.HTTPConnection, str | None]:
        """(pool key, connection, request target when talking to an http:// proxy)."""
        scheme, host = parts.scheme, parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        proxy = _proxy_for(scheme, host)
        key = (scheme, host, port, proxy, self.verify)
        conn = self._conns.get(key)
        if conn is not None and _dropped(conn):
            self._drop(key)
            conn = None
        target = None
        if proxy and scheme == "http":
            target = parts.geturl()
        if conn is None:
            conn = self._new_connection(scheme, host, port, proxy, timeout)
            self._conns[key] = conn
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return key, conn, target

    def _new_connection(self, scheme: str, host: str, port: int, proxy: str | None,
                        timeout: float) -> http.client.HTTPConnection:
        if proxy:
            p = urlsplit(proxy)
            phost, pport = p.hostname or "", p.port or 8080
            proxy_headers = {}
            if p.username:
                token = base64.b64encode(f"{p.username}:{p.password or ''}".encode()).decode()
                proxy_headers["Proxy-Authorization"] = f"Basic {token}"
            if scheme == "https":
                conn = http.client.HTTPSConnection(phost, pport, timeout=timeout, context=self._tls())
                conn.set_tunnel(host, port, headers=proxy_headers)
                return conn
            conn = http.client.HTTPConnection(phost, pport, timeout=timeout)
            return conn
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._tls())
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def _tls(self) -> ssl.SSLContext:
        if self.verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        if isinstance(self.verify, str):
            where = self.verify
            return ssl.create_default_context(capath=where) if os.path.isdir(where) else \
                ssl.create_default_context(cafile=where)
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or _certifi()
        return ssl.create_default_context(cafile=bundle) if bundle else ssl.create_default_context()


def _certifi() -> str | None:
    try:
        import certifi
    except ImportError:
        return None
    return certifi.where()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"[Errno {exc.errno}] Connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host: {exc.strerror or exc}"
    return str(exc) or type(exc).__name__


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """A kept-alive connection the server closed meanwhile (readable with nothing to read = EOF)."""
    import select

    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _proxy_for(scheme: str, host: str) -> str | None:
    names = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    if not any(os.environ.get(n) or os.environ.get(n.upper()) for n in names):
        return None
    from urllib.request import getproxies_environment, proxy_bypass_environment

    proxies = getproxies_environment()
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or proxy_bypass_environment(host, proxies):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"
