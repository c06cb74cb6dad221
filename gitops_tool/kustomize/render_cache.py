"""A cache of validated renders: skip `kubectl kustomize` + validation when only release lines changed.

A re-promotion changes exactly the image tag/digest and a few annotations of one environment's
release files; every other input of the overlay is what the last validated render saw. The key
is a hash of everything the render and the validation read, with the values of those release lines
masked (their quoting shape stays in the key):

  * the cache format, the tool version and a fingerprint of the validating code and its schemas
    (and of the installed kubernetes-validate, jsonschema and PyYAML),
    the kubectl binary (path, size, mtime), the --schema-dir files and the Kubernetes version;
  * the git tree of HEAD, every path with its blob id, except the release directories of
    environments (other environments' promotions must not evict this one's entries);
  * this environment's release files as they are on disk now, release values masked.

Safe by construction, any doubt means no key and so a full render and validation: a working tree
that differs from HEAD outside this environment's release directory (untracked and ignored files
included), a symlink, submodule or .gitattributes anywhere, a kustomization that points outside
the repository, at a URL or into another environment's release directory, a masked value that is
not the shape a promotion writes (a tag, a digest, one line, no token-shaped text). An entry is
only written after a full validation with no error; a corrupt or unreadable entry, an entry for
another key or a failed write (disk full) is a miss.

The cache lives in $GITOPS_TOOL_CACHE_DIR, else $XDG_CACHE_HOME/gitops-tool, else
~/.cache/gitops-tool, in validated-render/; GITOPS_TOOL_CACHE=off turns it (and the generate memo) off.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path

FORMAT = 1
SUBDIR = "validated-render"
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_UTC_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z$")  # deployed-at (kustomize/release.py)
_NON_STRING = re.compile(r"^(?:[-+]?[0-9._]+(?:[eE][-+]?[0-9]+)?|0x[0-9a-fA-F]+|0o[0-7]+|\.inf|\.nan|"
                         r"true|false|yes|no|on|off|y|n|null|~|)$", re.I)
# The lines a promotion writes: key -> check of the (unquoted) value.
_RELEASE_LINE = re.compile(r"^(?P<lead>\s*(?:-\s+)?)(?P<key>newTag|digest|gitops-tool\.io/model-version|"
                           r"gitops-tool\.io/artifact|gitops-tool\.io/deployed-before|gitops-tool\.io/deployed-at)"
                           r":[ \t]*(?P<value>.*)$")
_CHAIN_KEY = "gitops-tool.io/deployed-before"
_RELEASE_DIR = re.compile(r"^environments/[^/]+/release(?:/|$)")
_REFERENCE = re.compile(r"^\s*(?:-\s+)?(?:path:\s*)?(?P<ref>\S+)\s*$")


def cache_dir() -> Path:
    if explicit := os.environ.get("GITOPS_TOOL_CACHE_DIR"):
        return Path(explicit) / SUBDIR
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gitops-tool" / SUBDIR


def enabled() -> bool:
    return os.environ.get("GITOPS_TOOL_CACHE", "on").lower() not in ("off", "0", "false", "no")


def render_key(env: str, env_dir: Path, schema_dir: Path | None, k8s_version: str) -> str | None:
    """The key of this overlay's validated render, or None when the inputs cannot be keyed safely."""
    if not enabled():
        return None
    env_dir = Path(env_dir).resolve()
    root = env_dir.parent.parent
    if env_dir.parent.name != "environments":
        return None
    own = f"environments/{env_dir.name}/release/"
    try:
        if not _only_own_release_changed(root, own) or not _references_stay_inside(root, env_dir.name):
            return None
        tree = _tree_without_releases(root)
        release = _masked_release(env_dir / "release")
        parts = [f"format {FORMAT}", f"env {env} {env_dir.name}", f"k8s {k8s_version}", _tool_fingerprint(),
                 _kubectl_fingerprint(), _schema_fingerprint(schema_dir)]
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if tree is None or release is None:
        return None
    digest = hashlib.sha256()
    for part in [*parts, tree, release]:
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


def is_validated(key: str) -> bool:
    """A well-formed entry for exactly this key exists; anything else (corrupt, other key) is a miss."""
    try:
        entry = json.loads((cache_dir() / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(entry, dict) and entry.get("format") == FORMAT and entry.get("key") == key \
        and entry.get("validated") is True


def record_validated(key: str, env: str) -> bool:
    """Write the entry (beside it, then renamed); False when it could not be written (disk full...)."""
    entry = json.dumps({"format": FORMAT, "key": key, "env": env, "validated": True})
    try:
        return _write(cache_dir() / f"{key}.json", entry.encode("utf-8"))
    except OSError:  # write_entry reports its own failures; this is for anything before it
        return False


def _write(path: Path, data: bytes) -> bool:
    from gitops_tool.cache_files import write_entry

    return write_entry(path, data, durable=True)  # a crash must not leave a renamed but empty entry


def _git(root: Path, *args: str) -> str:
    res = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=30)
    if res.returncode != 0:
        raise subprocess.SubprocessError(res.stderr.decode(errors="replace"))
    return res.stdout.decode("utf-8", "surrogateescape")


def _only_own_release_changed(root: Path, own: str) -> bool:
    out = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignored=matching",
               "--no-renames")
    for entry in filter(None, out.split("\0")):
        path = entry[3:]
        if not path.startswith(own) or "/" in path[len(own):]:
            return False
    return True


def _tree_without_releases(root: Path) -> str | None:
    """HEAD's files with their blob ids, release directories left out; None on a link or submodule."""
    lines = []
    for line in _git(root, "ls-tree", "-r", "-z", "--full-tree", "HEAD").split("\0"):
        if not line:
            continue
        meta, path = line.split("\t", 1)
        mode = meta.split(" ", 1)[0]
        if mode in ("120000", "160000") or path.rsplit("/", 1)[-1] == ".gitattributes":
            return None
        if not _RELEASE_DIR.match(path):
            lines.append(f"{meta}\t{path}")
    return "\n".join(lines)


def _references_stay_inside(root: Path, env: str) -> bool:
    """No kustomization points outside the repository, at a URL, or into another env's release dir."""
    res = subprocess.run(["git", "-C", str(root), "grep", "-n", "-I", "-E", r"\.\./|://|^\s*(-\s+)?(path:\s*)?/",
                          "--", "*kustomization.yaml", "*kustomization.yml", "*Kustomization"],
                         capture_output=True, timeout=30)
    if res.returncode == 1:
        return True  # no kustomization names a parent, an absolute path or a URL
    if res.returncode != 0:
        raise subprocess.SubprocessError(res.stderr.decode(errors="replace"))
    out = res.stdout.decode("utf-8", "surrogateescape")
    for line in out.splitlines():
        path, _, text = line.split(":", 2)
        if "://" in text:
            return False
        match = _REFERENCE.match(text.split("#", 1)[0])
        if not match:
            return False  # a ../ in a flow list or some other value: cannot tell what kustomize loads
        ref = match["ref"].strip("'\"")
        if ref.startswith("/"):
            return False
        target = os.path.normpath(os.path.join(os.path.dirname(path), ref))
        if target == ".." or target.startswith("../") or (
                _RELEASE_DIR.match(target + "/") and not target.startswith(f"environments/{env}/release")):
            return False
    return True


def _masked_release(release: Path) -> str | None:
    """The release files with the values promotions write masked to their quoting shape."""
    parts = []
    for path in sorted(release.iterdir()):
        if path.is_symlink() or not path.is_file():
            return None
        text = path.read_text(encoding="utf-8")
        lines, chain = text.split("\n"), []
        for index, line in enumerate(lines):
            match = _RELEASE_LINE.match(line)
            if not match:
                continue
            shape = _shape(match["key"], match["value"])
            if shape is None or _continues(lines, index):
                return None
            lines[index] = f"{match['lead']}{match['key']}: <{shape}>"
            chain += [(index, match["lead"])] if match["key"] == _CHAIN_KEY else []
        if len(chain) == 1 and not chain[0][1].strip() and _chain_among_annotations(text):
            del lines[chain[0][0]]  # a model's second promotion adds it: its presence is not keyed either
        parts.append(f"{path.name}\n" + "\n".join(lines))
    return "\n\0".join(parts)


def _chain_among_annotations(text: str) -> bool:
    """The one deployed-before line is an entry of metadata.annotations beside at least one other:
    without it the same mapping remains, so the render differs by one annotation whose value is
    already checked (_shape). Anywhere else (a label, the only annotation...) the line stays keyed."""
    import yaml

    try:
        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return False
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    notes = meta.get("annotations") if isinstance(meta, dict) else None
    return isinstance(notes, dict) and _CHAIN_KEY in notes and len(notes) > 1


def _continues(lines: list[str], index: int) -> bool:
    """The next non-blank line is indented deeper: the value goes on (a multi-line scalar)."""
    indent = len(lines[index]) - len(lines[index].lstrip())
    for line in lines[index + 1:]:
        if line.strip():
            return len(line) - len(line.lstrip()) > indent and not line.lstrip().startswith(("- ", "#"))
    return False


def _shape(key: str, raw: str) -> str | None:
    """'dq', 'sq' or 'plain' when the value is one a promotion may write; None otherwise."""
    from gitops_tool.validate.secrets_scan import token_hits

    raw = raw.rstrip()
    if raw.startswith('"'):
        shape, value = "dq", _unquote_double(raw)
    elif raw.startswith("'"):
        shape = "sq"
        value = raw[1:-1].replace("''", "'") if len(raw) >= 2 and raw.endswith("'") else None
    elif raw and raw[0] not in "|>&*!%@`{[#" and " #" not in raw and not _NON_STRING.match(raw):
        shape, value = "plain", raw
    else:
        return None
    if value is None or "\n" in value or any(True for _ in token_hits(value)):
        return None
    if key == "newTag" and (not _TAG.match(value) or value == "latest"):
        return None
    if key == "digest" and not _DIGEST.match(value):
        return None
    if key.endswith("deployed-before") and not _is_chain(value):
        return None
    if key.endswith("deployed-at") and not _UTC_TIME.match(value):
        return None
    if key.endswith("model-version") and not value.strip():
        return None
    return shape


def _unquote_double(raw: str) -> str | None:
    if len(raw) < 2 or not raw.endswith('"'):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _is_chain(value: str) -> bool:
    try:
        items = json.loads(value)
    except ValueError:
        return False
    return isinstance(items, list) and all(isinstance(i, dict) and "version" in i for i in items)


def _stat_line(path: Path, label: str) -> str:
    st = path.stat()
    return f"{label} {st.st_size} {st.st_mtime_ns}"


def _tool_fingerprint() -> str:
    """The tool version and the files of the code that renders and validates (editable installs)."""
    from gitops_tool import __version__

    pkg = Path(__file__).resolve().parent.parent
    lines = [f"gitops-tool {__version__}"]
    for folder in ("kustomize", "validate", "validate/schemas", "promotion"):
        for path in sorted((pkg / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                lines.append(_stat_line(path, str(path.relative_to(pkg))))
    for name in ("kubernetes_validate", "jsonschema", "yaml"):  # the validators the checks run on
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin) if spec and spec.origin else None
        lines.append(_stat_line(origin, name) if origin and origin.is_file() else f"{name} absent")
    return "\n".join(lines)


def _kubectl_fingerprint() -> str:
    from gitops_tool.kustomize.render import kubectl_path

    path = Path(kubectl_path()).resolve()
    return _stat_line(path, f"kubectl {path}")


def _schema_fingerprint(schema_dir: Path | None) -> str:
    if schema_dir is None:
        return "schemas none"
    folder = Path(schema_dir).resolve()
    if not folder.is_dir():
        return f"schemas {folder} missing"
    return "\n".join([f"schemas {folder}"] + [_stat_line(p, str(p.relative_to(folder)))
                                              for p in sorted(folder.rglob("*")) if p.is_file()])
