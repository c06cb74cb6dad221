"""Run a rendered container as a local process under the constraints its pod spec declares.

How (as root; see ../shared/REFERENCE.md, "Running the rendered pods as processes"):
- a network namespace per "cluster" (loopback only, `unshare -n`), entered with nsenter; the
  Service names resolve to 127.0.0.1 through a bind-mounted /etc/hosts (stand-in for cluster DNS);
- a private mount namespace per container: every emptyDir, PVC, Secret and ConfigMap volume
  bound over its mountPath (a missing mount point is made in a tmpfs-backed overlay of its parent),
  then the root remounted read-only when readOnlyRootFilesystem is set;
- setpriv with the pod's runAsUser/runAsGroup, no new privileges, no capabilities;
- a cgroup v1 memory controller with the container's limits.memory, where the kernel allows it;
- command/args with Kubernetes' $(VAR) expansion, env with secretKeyRef filled from test values.

Stand-ins, beyond "no kubelet": the image's filesystem is this machine's (the venv's mlflow
3.17.2 and gitops-tool, Debian's PostgreSQL 15), Python lives under /root here, so a tmpfs
over /root re-exposes only /root/.pyenv; /etc/passwd gets entries for the pod UIDs (the postgres
image does the same with nss_wrapper).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.platform.netns import Netns

CGROUP_MEMORY = Path("/sys/fs/cgroup/memory")
PYENV = Path("/root/.pyenv")
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def why_not_supported() -> str | None:
    """None when this kernel lets us make mount and network namespaces as root; else the reason."""
    if os.geteuid() != 0:
        return "the boot test needs root (mount/network namespaces, setpriv, cgroups)"
    for argv in (["unshare", "--mount", "--fork", "sh", "-c", "mount --make-rprivate / && mount -o remount,bind,ro /"],
                 ["unshare", "--net", "--fork", "true"]):
        probe = subprocess.run(argv, capture_output=True, text=True)
        if probe.returncode != 0:
            return f"the kernel refuses {' '.join(argv[:2])}: {probe.stderr.strip()}"
    return None


def memory_cgroups_available() -> bool:
    probe = CGROUP_MEMORY / f"gitops-boot-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
        return True
    except OSError:
        return False


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in command and args: unknown references stay as written."""
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def quantity(value: str) -> int:
    from gitops_tool.config.sizing import quantity_bytes

    return quantity_bytes(value)


@dataclass
class Volume:
    """What a pod volume is backed by here: a host directory, read-only or not."""
    source: Path
    read_only: bool = False


@dataclass
class Sandbox:
    """What every container of the test 'cluster' shares: hosts/passwd files and a scratch area."""
    root: Path
    hosts: dict[str, str]
    users: dict[int, str]
    path_env: str
    _overlays: int = 0

    def files(self) -> tuple[Path, Path, Path]:
        hosts = self.root / "etc-hosts"
        hosts.write_text("127.0.0.1 localhost\n" + "".join(f"{ip} {name}\n" for name, ip in self.hosts.items()))
        passwd, group = self.root / "etc-passwd", self.root / "etc-group"
        base_passwd = Path("/etc/passwd").read_text()
        passwd.write_text(base_passwd + "".join(f"{n}:x:{u}:{u}::/tmp:/usr/sbin/nologin\n" for u, n in self.users.items()))
        group.write_text(Path("/etc/group").read_text() + "".join(f"{n}:x:{u}:\n" for u, n in self.users.items()))
        for path in (hosts, passwd, group):
            path.chmod(0o644)
        return hosts, passwd, group

    def scratch(self, name: str) -> Path:
        self._overlays += 1
        path = self.root / "mnt" / f"{self._overlays}-{name}"
        path.mkdir(parents=True)
        return path


@dataclass
class Container:
    """A rendered container plus its pod's securityContext, ready to run."""
    name: str
    spec: dict
    pod_spec: dict
    volumes: dict[str, Volume] = field(default_factory=dict)
    extra_rw: list[Path] = field(default_factory=list)   # e.g. the Git remote, standing in for GitHub
    env_override: dict[str, str] = field(default_factory=dict)

    def env(self, secrets: dict[str, dict[str, str]], path_env: str) -> dict[str, str]:
        out = {"PATH": path_env}
        for item in self.spec.get("env", []):
            if "value" in item:
                out[item["name"]] = expand(str(item["value"]), out)
            else:
                ref = item["valueFrom"]["secretKeyRef"]
                out[item["name"]] = secrets[ref["name"]][ref["key"]]
        return out | self.env_override

    def argv(self, env: dict[str, str], default: list[str] | None = None) -> list[str]:
        argv = list(self.spec.get("command") or default or []) + list(self.spec.get("args") or [])
        return [expand(a, env) for a in argv]

    @property
    def uid(self) -> tuple[int, int]:
        ctx = self.pod_spec.get("securityContext", {}) | self.spec.get("securityContext", {})
        return int(ctx["runAsUser"]), int(ctx.get("runAsGroup", ctx["runAsUser"]))

    @property
    def read_only_root(self) -> bool:
        return bool(self.spec.get("securityContext", {}).get("readOnlyRootFilesystem"))

    @property
    def memory_limit(self) -> int | None:
        limit = self.spec.get("resources", {}).get("limits", {}).get("memory")
        return quantity(limit) if limit else None


def _needed_paths() -> list[str]:
    """The interpreter's venv and this checkout (an editable install): the processes run from them."""
    paths = sorted({os.path.realpath(sys.prefix), os.path.realpath(Path(__file__).resolve().parents[2])})
    return [p for p in paths if not any(p != o and p.startswith(o + "/") for o in paths)]


def _keep_visible(target: str, source: str) -> list[str]:
    """A checkout under a mountPath (a clone in /tmp, whose emptyDir the pod mounts over /tmp) would vanish:
    bind it, read-only, into the volume at the same relative place before the volume goes over the path."""
    lines = []
    for path in _needed_paths():
        if path.startswith(target.rstrip("/") + "/"):
            inside = shlex.quote(os.path.join(source, os.path.relpath(path, target)))
            lines += [f"mkdir -p {inside}", f"mount --bind {shlex.quote(path)} {inside}",
                      f"mount -o remount,bind,ro {inside}"]
    return lines


def _mount_script(box: Sandbox, c: Container) -> list[str]:
    """Shell lines that build the container's filesystem view inside a fresh mount namespace."""
    hosts, passwd, group = box.files()
    lines = ["set -e", "mount --make-rprivate /"]
    if PYENV.is_dir():  # Python lives under /root (mode 700) here: expose only the interpreter tree
        keep = box.scratch("pyenv")
        lines += [f"mount --bind {PYENV} {keep}", "mount -t tmpfs -o mode=755,size=1m tmpfs /root",
                  f"mkdir -p {PYENV}", f"mount --bind {keep} {PYENV}"]
    overlaid: list[str] = []
    for mount in c.spec.get("volumeMounts", []):
        target = os.path.realpath(mount["mountPath"])
        if os.path.exists(target) or any(target.startswith(o + "/") for o in overlaid):
            continue
        parent = target
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        work = box.scratch("overlay")
        lines += [f"mount -t tmpfs tmpfs {work}", f"mkdir {work}/u {work}/w",
                  f"mount -t overlay overlay -o lowerdir={parent},upperdir={work}/u,workdir={work}/w {parent}"]
        overlaid.append(parent)
    ro_binds = []
    for mount in c.spec.get("volumeMounts", []):
        target = os.path.realpath(mount["mountPath"])
        volume = c.volumes[mount["name"]]
        keep = _keep_visible(target, str(volume.source))
        # --rbind carries the kept paths (bound into the volume first) over the mountPath with it.
        lines += keep + [f"mkdir -p {shlex.quote(target)}",
                         f"mount {'--rbind' if keep else '--bind'} {shlex.quote(str(volume.source))} {shlex.quote(target)}"]
        if volume.read_only or mount.get("readOnly"):
            ro_binds.append(target)
    lines += [f"mount --bind {hosts} /etc/hosts", f"mount --bind {passwd} /etc/passwd", f"mount --bind {group} /etc/group"]
    lines += [f"mount --bind {shlex.quote(str(p))} {shlex.quote(str(p))}" for p in c.extra_rw]
    if c.read_only_root:
        lines.append("mount -o remount,bind,ro /")
        lines += [f"mount -o remount,ro {o}" for o in overlaid]
        if PYENV.is_dir():
            lines.append("mount -o remount,ro /root")
    lines += [f"mount -o remount,bind,ro {shlex.quote(t)}" for t in ro_binds]
    return lines


@dataclass
class Running:
    container: Container
    proc: subprocess.Popen
    cgroup: Path | None
    log: Path

    def memory(self) -> dict[str, int]:
        """Peak and current usage, RSS and OOM kills from the container's memory cgroup."""
        if not self.cgroup:
            return {}
        stat = dict(line.split() for line in (self.cgroup / "memory.stat").read_text().splitlines())
        oom = dict(line.split() for line in (self.cgroup / "memory.oom_control").read_text().splitlines())
        return {"limit": int((self.cgroup / "memory.limit_in_bytes").read_text()),
                "max_usage": int((self.cgroup / "memory.max_usage_in_bytes").read_text()),
                "usage": int((self.cgroup / "memory.usage_in_bytes").read_text()),
                "rss": int(stat["total_rss"]), "oom_kill": int(oom.get("oom_kill", 0))}

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        if self.cgroup:
            for pid in (self.cgroup / "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for _ in range(100):
                try:
                    self.cgroup.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


def start(box: Sandbox, c: Container, netns: Netns, secrets: dict, *, default_command: list[str] | None = None,
          cgroups: bool = True, argv: list[str] | None = None) -> Running:
    """Start the container's process (or `argv`, e.g. an exec probe) under its declared constraints."""
    env = c.env(secrets, box.path_env)
    argv = argv or c.argv(env, default_command)
    uid, gid = c.uid
    lines = []
    cgroup = None
    if cgroups and c.memory_limit:
        cgroup = CGROUP_MEMORY / f"gitops-boot-{os.getpid()}-{c.name}"
        cgroup.mkdir()
        (cgroup / "memory.limit_in_bytes").write_text(str(c.memory_limit))
        lines.append(f"echo $$ > {cgroup}/cgroup.procs")
    lines += _mount_script(box, c)
    lines.append("cd /")
    lines.append("exec setpriv --reuid={0} --regid={1} --groups={1} --no-new-privs --inh-caps=-all "
                 "--bounding-set=-all -- {2}".format(uid, gid, " ".join(shlex.quote(a) for a in argv)))
    log = box.root / "logs" / f"{c.name}-{int(time.time() * 1000)}.log"
    log.parent.mkdir(exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(["nsenter", f"--net={netns.path}", "unshare", "--mount", "--fork",
                                 "sh", "-c", "\n".join(lines)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Running(c, proc, cgroup, log)


def run_to_completion(box: Sandbox, c: Container, netns: Netns, secrets: dict, timeout: float = 300,
                      **kw: Any) -> tuple[int, str]:
    running = start(box, c, netns, secrets, **kw)
    try:
        rc = running.proc.wait(timeout)
    finally:
        running.stop()
    return rc, running.log.read_text(errors="replace")


def probe_once(box: Sandbox, running: Running, probe: dict, netns: Netns, secrets: dict) -> bool:
    """One kubelet-style probe: httpGet to the pod's port (named ports resolved) or exec in the container."""
    timeout = probe.get("timeoutSeconds", 1)
    if "httpGet" in probe:
        get = probe["httpGet"]
        port = get["port"]
        if isinstance(port, str):
            port = next(p["containerPort"] for p in running.container.spec["ports"] if p.get("name") == port)
        try:
            status, _ = netns.http(f"http://127.0.0.1:{port}{get.get('path', '/')}", timeout=timeout)
        except OSError:
            return False
        return 200 <= status < 400
    rc, _ = run_to_completion(box, running.container, netns, secrets, timeout=max(timeout, 10), cgroups=False,
                              argv=probe["exec"]["command"])
    return rc == 0


def wait_probe(box: Sandbox, running: Running, kind: str, netns: Netns, secrets: dict) -> int:
    """Probe as the kubelet would, honouring periodSeconds and failureThreshold; return attempts used."""
    probe = running.container.spec[kind]
    period, threshold = probe.get("periodSeconds", 10), probe.get("failureThreshold", 3)
    for attempt in range(1, threshold + 1):
        if not running.alive():
            raise AssertionError(f"{running.container.name} exited ({running.proc.returncode}) before its {kind} "
                                 f"passed:\n{running.log.read_text(errors='replace')[-3000:]}")
        if probe_once(box, running, probe, netns, secrets):
            return attempt
        time.sleep(period)
    raise AssertionError(f"{running.container.name}: {kind} failed {threshold} times:\n"
                         f"{running.log.read_text(errors='replace')[-3000:]}")
