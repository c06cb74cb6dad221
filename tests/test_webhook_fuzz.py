"""Fuzz one running receiver with >= 1,000 malformed requests over real HTTP and raw sockets.

Random methods, paths, headers, signatures, timestamps, bodies and sizes (up to 3 MiB), plus
raw byte streams that are not valid HTTP. None may get a 5xx, none may reach the handler
(even the ones signed with the real secret carry no mapped alias move), and the server must
still answer /healthz afterwards.
"""

from __future__ import annotations

import json
import socket
import time
import uuid

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitops_tool.webhook.app import WEBHOOK_PATH
from gitops_tool.webhook.signature import sign
from tests.test_webhook_receiver import SECRET, Recorder, metric, receiver

MAPPED_ALIASES = {"candidate", "challenger", "champion"}
MIB = 1024 * 1024
# requests refuses leading whitespace in header values; raw sockets cover the rest.
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(str.lstrip)
SENT = {"http": 0, "raw": 0}
STATUSES: dict[object, int] = {}


@pytest.fixture(scope="module")
def target():
    rec = Recorder()
    with receiver(rec, queue_size=10) as (url, app):
        session = requests.Session()
        yield url, rec, session
        session.close()


def _timestamp() -> st.SearchStrategy[str | None]:
    now = int(time.time())
    return st.one_of(
        st.none(), HEADER_TEXT, st.just(str(now)),
        st.integers(301, 10**10).map(lambda d: str(now - d)),
        st.integers(301, 10**6).map(lambda d: str(now + d)),
        st.integers(-(10**15), 10**15).map(str),
    )


def _json_body() -> st.SearchStrategy[bytes]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), HEADER_TEXT)
    data = st.one_of(
        st.dictionaries(st.sampled_from(["name", "alias", "version", "x"]), scalars, max_size=4),
        st.fixed_dictionaries({"name": st.sampled_from(["wine-classifier", "other"]),
                               "alias": HEADER_TEXT.filter(lambda a: a not in MAPPED_ALIASES),
                               "version": st.one_of(HEADER_TEXT, st.integers())}),
        scalars, st.lists(scalars, max_size=3),
    )
    doc = st.one_of(
        st.fixed_dictionaries({
            "entity": st.one_of(st.sampled_from(["model_version_alias", "model_version", "x"]), scalars),
            "action": st.one_of(st.sampled_from(["created", "deleted", "set"]), scalars),
            "data": data}),
        st.recursive(scalars, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(HEADER_TEXT, kids,
                                                                                         max_size=3),
                     max_leaves=8),
    )
    return doc.map(lambda d: json.dumps(d).encode())


def _event_body() -> st.SearchStrategy[bytes]:
    """Well-formed events that must be ignored: other events, or alias moves gitops.yaml does not map."""
    name = st.sampled_from(["wine-classifier", "other-model"])
    alias = HEADER_TEXT.filter(lambda a: a and a not in MAPPED_ALIASES)
    data = st.fixed_dictionaries({"name": name, "alias": alias, "version": st.sampled_from(["1", "22"])})
    entity_action = st.sampled_from([("model_version_alias", "created"), ("model_version_alias", "deleted"),
                                     ("model_version", "created"), ("registered_model", "created")])
    return st.tuples(entity_action, data).map(lambda ea_d: json.dumps(
        {"entity": ea_d[0][0], "action": ea_d[0][1], "data": ea_d[1]}).encode())


def _body() -> st.SearchStrategy[bytes]:
    sizes = st.sampled_from([MIB - 1, MIB, MIB + 1, 3 * MIB])
    return st.one_of(st.binary(max_size=2048), _json_body(), sizes.map(lambda n: b"{" * n))


@st.composite
def http_requests(draw):
    # Hypothesis favours the ends of choices: draw a weight first so most requests reach the checks.
    odd = draw(st.integers(0, 9))
    method = draw(st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"])) if odd == 0 else "POST"
    path = WEBHOOK_PATH if odd > 1 else draw(st.one_of(
        st.sampled_from(["/", "/webhooks", WEBHOOK_PATH + "/", "/healthz/x", "/metrics?x=1",
                         "/readyz/../metrics", "//webhooks/mlflow"]),
        st.text(st.sampled_from("abcxyz/%.-_?=&"), max_size=40).map(lambda p: "/" + p)))
    genuine = draw(st.integers(0, 4)) == 0  # fresh time, sane id, a well-formed unmapped event
    body = draw(_event_body() if genuine and draw(st.booleans()) else _body())
    if genuine:
        delivery_id = draw(st.builds(lambda: str(uuid.uuid4())) | st.sampled_from(["d-1", "d-2"]))
        timestamp = str(int(time.time()))
    else:
        delivery_id = draw(st.one_of(st.none(), st.builds(lambda: str(uuid.uuid4())), HEADER_TEXT))
        timestamp = draw(_timestamp())
    headers = {"Content-Type": draw(st.sampled_from(["application/json", "text/plain", "", "x/y"]))}
    if delivery_id is not None:
        headers["X-MLflow-Delivery-Id"] = delivery_id
    if timestamp is not None:
        headers["X-MLflow-Timestamp"] = timestamp
    kind = draw(st.sampled_from(["none", "text", "b64", "wrong_secret", "real_secret_other_body"]
                                + ["real"] * 3))
    sid, sts = delivery_id or "", timestamp or ""
    signature = {
        "none": None,
        "text": draw(HEADER_TEXT),
        "b64": "v1," + draw(st.binary(min_size=32, max_size=32)).hex(),
        "wrong_secret": sign("not-the-secret", sid, sts, body),
        "real_secret_other_body": sign(SECRET, sid, sts, body + b" "),
        "real": sign(SECRET, sid, sts, body),  # valid only if id and timestamp are sane: then 2xx/4xx
    }[kind]
    if signature is not None:
        headers["X-MLflow-Signature"] = signature
    extra = draw(st.dictionaries(st.text(st.sampled_from("abcdefXYZ-"), min_size=1, max_size=12),
                                 HEADER_TEXT, max_size=3))
    headers.update({k: v for k, v in extra.items() if k.lower() not in {h.lower() for h in headers}
                    and k.lower() not in {"content-length", "transfer-encoding", "host", "expect"}})
    return method, path, headers, body


RAW_PREFIXES = [
    b"", b"POST " + WEBHOOK_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n",
    b"POST " + WEBHOOK_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST " + WEBHOOK_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET /healthz HTTP/9.9\r\n", b"\x16\x03\x01\x02\x00\x01\x00",  # a TLS ClientHello start
]


def _raw_status(url: str, payload: bytes) -> int | None:
    """Send bytes, half-close, read what comes back; the status code, or None if just closed."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            reply = sock.recv(64)
        except (ConnectionResetError, BrokenPipeError):
            return None
    if not reply.startswith(b"HTTP/1.1 "):
        return None
    return int(reply[9:12])


FUZZ = settings(max_examples=1000, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])


@FUZZ
@given(request=http_requests())
def test_fuzzed_http_requests_never_5xx(target, request):
    url, _, session = target
    method, path, headers, body = request
    SENT["http"] += 1
    try:
        resp = session.request(method, url + path, data=body, headers=headers, timeout=10)
    except requests.ConnectionError:
        assert len(body) > MIB, "connection dropped for a body within the size cap"
        return
    STATUSES[resp.status_code] = STATUSES.get(resp.status_code, 0) + 1
    assert resp.status_code < 500, (resp.status_code, resp.text[:300], method, path, headers)


@settings(FUZZ, max_examples=200)
@given(prefix=st.sampled_from(RAW_PREFIXES), garbage=st.binary(max_size=512))
def test_fuzzed_raw_bytes_never_5xx(target, prefix, garbage):
    url, _, _ = target
    SENT["raw"] += 1
    status = _raw_status(url, prefix + garbage)
    STATUSES[f"raw {status}"] = STATUSES.get(f"raw {status}", 0) + 1
    assert status is None or status < 500, (status, prefix + garbage)


def test_after_fuzzing_handler_never_ran_and_server_is_healthy(target):
    url, rec, _ = target
    assert SENT["http"] + SENT["raw"] >= 1000, SENT
    print(f"sent {SENT}, statuses {dict(sorted(STATUSES.items(), key=str))}")
    outcomes = {o: metric(url, "gitops_webhook_deliveries_total", outcome=o)
                for o in ("unauthorized", "malformed", "stale", "too_large", "ignored", "replayed")}
    print(f"delivery outcomes {outcomes}")
    # The fuzzer reached each check, not just the router.
    assert all(count > 0 for count in outcomes.values()), outcomes
    assert requests.get(url + "/healthz", timeout=5).status_code == 200
    assert requests.get(url + "/readyz", timeout=5).status_code == 200
    assert metric(url, "gitops_webhook_deliveries_total", outcome="accepted") == 0
    assert metric(url, "gitops_webhook_deliveries_total", outcome="queue_full") == 0
    time.sleep(0.2)
    assert rec.calls == 0
