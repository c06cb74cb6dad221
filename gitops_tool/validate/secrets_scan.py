"""Find credentials committed in files or rendered manifests.

Patterns are token *shapes* (PEM private keys, GitHub/AWS/Slack tokens) and
env entries named like a credential that carry a literal `value:`; the bare
word "password" in prose or a secretKeyRef never matches.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

TOKEN_PATTERNS: dict[str, re.Pattern[str]] = {
    "private-key": re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    "github-token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "github-pat": re.compile(r"\bgithub_pat_[A-Za-z0-9_]{22,}\b"),
    "aws-access-key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "slack-token": re.compile(r"\bxox[bp]-[0-9A-Za-z]+(?:-[0-9A-Za-z]+){2,}"),
}
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|(?:^|_)(?:API|ACCESS|PRIVATE|SECRET)?_?KEY(?:$|_)")
# Names that hold where a secret lives, not the secret itself.
_REFERENCE_SUFFIX = re.compile(r"_(?:FILE|PATH|DIR|NAME|REF|ID|ENDPOINT|URL|URI)$")
# git's indexed config variables: GIT_CONFIG_KEY_<n> holds a config *name* such as credential.helper.
_GIT_CONFIG_KEY = re.compile(r"^GIT_CONFIG_KEY_\d+$")
_ENV_REFERENCE = re.compile(r"\$\([A-Za-z_][A-Za-z0-9_]*\)")
_SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__"}
_MAX_FILE_BYTES = 2_000_000
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser: ~10x the pure-Python one


@dataclass(frozen=True)
class SecretHit:
    source: str  # file path or label
    line: int  # 1-based; 0 when unknown
    rule: str
    excerpt: str  # redacted

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.rule}: {self.excerpt}"


def redact(value: str) -> str:
    value = value.strip()
    return value[:4] + "\u2026" if len(value) > 4 else "\u2026"


def token_hits(value: str) -> Iterator[tuple[str, re.Match[str]]]:
    for rule, pattern in TOKEN_PATTERNS.items():
        for match in pattern.finditer(value):
            yield rule, match


def is_secret_env_name(name: Any) -> bool:
    if not isinstance(name, str):
        return False
    upper = name.upper()
    if _GIT_CONFIG_KEY.match(upper):
        return False
    return bool(_SECRET_NAME.search(upper)) and not _REFERENCE_SUFFIX.search(upper)


def literal_env_secrets(doc: Any, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """(path of `value`, env name) for credential-named env entries with a literal value."""
    if isinstance(doc, dict):
        env = doc.get("env")
        if isinstance(env, list):
            for index, entry in enumerate(env):
                if not isinstance(entry, dict) or not is_secret_env_name(entry.get("name")):
                    continue
                value = entry.get("value")
                if value not in (None, "") and not _ENV_REFERENCE.fullmatch(str(value)):
                    yield path + ("env", index, "value"), entry["name"]
        for key, value in doc.items():
            yield from literal_env_secrets(value, path + (key,))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from literal_env_secrets(value, path + (index,))


def string_values(doc: Any, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """Every string value of a parsed document with its path."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from string_values(value, path + (key,))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from string_values(value, path + (index,))
    elif isinstance(doc, str):
        yield path, doc


def _line_of(text: str, needle: str) -> int:
    index = text.find(needle)
    return text.count("\n", 0, index) + 1 if index >= 0 else 0


def _yaml_env_hits(text: str, source: str) -> list[SecretHit]:
    try:
        docs = list(yaml.load_all(text, Loader=_SAFE_LOADER))
    except yaml.YAMLError:
        return []  # not YAML after all (a template, say): the token patterns still ran
    hits = []
    for doc in docs:
        for _, name in literal_env_secrets(doc):
            hits.append(SecretHit(source, _line_of(text, f"name: {name}"), "literal-env-secret",
                                  f"env {name} has a literal value (use valueFrom.secretKeyRef)"))
    return hits


def scan_text(text: str, source: str) -> list[SecretHit]:
    """Token shapes anywhere; literal credential env values when the source is YAML."""
    hits = [
        SecretHit(source, text.count("\n", 0, match.start()) + 1, rule, redact(match.group(0)))
        for rule, match in token_hits(text)
    ]
    if source.endswith((".yaml", ".yml")) and "env" in text:
        hits += _yaml_env_hits(text, source)
    return sorted(hits, key=lambda h: (h.line, h.rule))


def _tracked_files(root: Path, paths: list[str] | None = None) -> list[Path]:
    try:
        proc = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--", *(paths or [])],
                              capture_output=True, check=True, timeout=60)
        return [root / name for name in proc.stdout.decode().split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        tops = [root / p for p in paths] if paths else [root]
        found = [t for t in tops if t.is_file()]
        found += [p for t in tops if t.is_dir() for p in t.rglob("*") if p.is_file()]
        return [p for p in found if not _SKIP_DIRS & set(p.relative_to(root).parts)]


def scan_tree(root: Path, paths: list[str] | None = None) -> list[SecretHit]:
    """Scan tracked text files (git ls-files in a repo, else a walk); binaries are skipped.

    ``paths`` (relative to root) limits the scan to those files and folders, e.g. what one overlay reads."""
    root = Path(root)
    hits: list[SecretHit] = []
    for path in sorted(set(_tracked_files(root, paths))):
        try:
            if path.is_symlink() or not path.is_file() or path.stat().st_size > _MAX_FILE_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if b"\0" in data[:8192]:
            continue
        hits += scan_text(data.decode("utf-8", errors="replace"), str(path.relative_to(root)))
    return hits
