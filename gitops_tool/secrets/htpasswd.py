"""htpasswd entries: apr1 (Apache MD5-crypt) or bcrypt ($2y$ via the bcrypt package), which nginx accepts,
and {SHA}, the only scheme Envoy Gateway's basicAuth accepts (nginx accepts it too)."""

from __future__ import annotations

import hashlib
import secrets

from gitops_tool.errors import GitopsError

_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _to64(value: int, length: int) -> str:
    out = ""
    for _ in range(length):
        out += _ITOA64[value & 0x3F]
        value >>= 6
    return out


def apr1(password: str, salt: str | None = None) -> str:
    """Apache's $apr1$ MD5-crypt, as htpasswd -m makes it."""
    salt = (salt or "".join(secrets.choice(_ITOA64) for _ in range(8)))[:8]
    pw, magic = password.encode(), b"$apr1$"
    final = hashlib.md5(pw + salt.encode() + pw).digest()
    ctx = pw + magic + salt.encode()
    for i in range(len(pw), 0, -16):
        ctx += final[: min(16, i)]
    i = len(pw)
    while i:
        ctx += b"\x00" if i & 1 else pw[:1]
        i >>= 1
    final = hashlib.md5(ctx).digest()
    for i in range(1000):
        step = (pw if i & 1 else final) + (salt.encode() if i % 3 else b"") + (pw if i % 7 else b"")
        step += final if i & 1 else pw
        final = hashlib.md5(step).digest()
    f = final
    encoded = "".join(_to64((f[a] << 16) | (f[b] << 8) | f[c], 4)
                      for a, b, c in ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)))
    return f"$apr1${salt}${encoded}{_to64(f[11], 2)}"


def bcrypt_hash(password: str, rounds: int = 12) -> str:
    try:
        import bcrypt
    except ImportError:
        raise GitopsError("bcrypt hashes need the bcrypt package (pip install bcrypt); or use the default apr1") \
            from None
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds, prefix=b"2b")).decode().replace(
        "$2b$", "$2y$", 1)


def sha(password: str) -> str:
    """`{SHA}` + base64(SHA-1): unsalted, so use a long random password (Envoy Gateway allows nothing else)."""
    import base64

    return "{SHA}" + base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()


def entry(user: str, password: str, *, algorithm: str = "apr1") -> str:
    if not user or ":" in user or any(c.isspace() for c in user):
        raise GitopsError(f"htpasswd user {user!r}: must be non-empty, without ':' or spaces")
    if not password:
        raise GitopsError("htpasswd: the password is empty")
    digest = {"bcrypt": bcrypt_hash, "sha": sha}.get(algorithm, apr1)(password)
    return f"{user}:{digest}"
