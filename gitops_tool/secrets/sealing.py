"""Seal Secret values for the sealed-secrets controller, following its published hybrid scheme.

Per value: a random 32-byte AES-256-GCM session key (single use, so a zero nonce), wrapped with
RSA-OAEP(SHA-256) under the controller's certificate, with the scope as the OAEP label:
strict "<namespace>/<name>", namespace-wide "<namespace>". Output: uint16 BE length of the
wrapped key, the wrapped key, then the AES-GCM ciphertext+tag; base64 in spec.encryptedData.
"""

from __future__ import annotations

import base64
import os
import struct
from pathlib import Path

from gitops_tool.errors import GitopsError

SCOPES = ("strict", "namespace-wide")
SESSION_KEY_BYTES = 32
NONCE = bytes(12)


def load_public_key(cert_path: Path):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    try:
        data = Path(cert_path).read_bytes()
    except OSError as exc:
        raise GitopsError(f"{cert_path}: cannot read the sealing certificate: {exc.strerror or exc}") from None
    try:
        key = x509.load_pem_x509_certificate(data).public_key()
    except ValueError:
        raise GitopsError(f"{cert_path}: not a PEM certificate (fetch it with `kubeseal --fetch-cert`)") from None
    if not isinstance(key, RSAPublicKey):
        raise GitopsError(f"{cert_path}: the certificate's key is not RSA; sealed-secrets uses RSA keys")
    return key


def label(namespace: str, name: str, scope: str) -> bytes:
    if scope == "strict":
        return f"{namespace}/{name}".encode()
    if scope == "namespace-wide":
        return namespace.encode()
    raise GitopsError(f"sealing scope {scope!r} is not one of {', '.join(SCOPES)}")


def hybrid_encrypt(public_key, plaintext: bytes, oaep_label: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    session_key = os.urandom(SESSION_KEY_BYTES)
    wrapped = public_key.encrypt(session_key, padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=oaep_label))
    sealed = AESGCM(session_key).encrypt(NONCE, plaintext, None)
    return struct.pack(">H", len(wrapped)) + wrapped + sealed


def hybrid_decrypt(private_key, ciphertext: bytes, oaep_label: bytes) -> bytes:
    """The controller's side, for tests and `secrets verify`: unwrap the session key, open the box."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    (size,) = struct.unpack(">H", ciphertext[:2])
    session_key = private_key.decrypt(ciphertext[2:2 + size], padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=oaep_label))
    return AESGCM(session_key).decrypt(NONCE, ciphertext[2 + size:], None)


def sealed_secret(public_key, *, name: str, namespace: str, values: dict[str, str], scope: str,
                  secret_annotations: dict[str, str] | None = None) -> dict:
    """secret_annotations land on the unsealed Secret (e.g. KServe's s3-endpoint); they are not encrypted."""
    oaep_label = label(namespace, name, scope)
    encrypted = {key: base64.b64encode(hybrid_encrypt(public_key, value.encode(), oaep_label)).decode()
                 for key, value in sorted(values.items())}
    annotations = {"argocd.argoproj.io/sync-wave": "-1"}
    if scope == "namespace-wide":
        annotations["sealedsecrets.bitnami.com/namespace-wide"] = "true"
    template: dict = {"name": name, "namespace": namespace}
    if secret_annotations:
        template["annotations"] = dict(secret_annotations)
    return {
        "apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": {"encryptedData": encrypted, "template": {"metadata": template, "type": "Opaque"}},
    }


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments skipped; no shell quoting rules."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise GitopsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    values = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise GitopsError(f"{path}:{number}: expected KEY=VALUE")
        values[key.strip()] = value
    return values
