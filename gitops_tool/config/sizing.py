"""MLflow's memory need, from measurement, and the check that every instance's limit fits it.

The figures are the total RSS of one `mlflow server` pod (uvicorn parent + workers, plus the job
runner and its huey consumers when job execution is on), idle after start and a few requests,
measured by bench/mlflow_rss.py and by the boot test (tests/platform/); docs/reliability.md has
the table. Job execution multiplies the process count (13 processes at 2 workers), which is why
MLflow was OOM-killed at 1 GiB with MLflow 3.17's default (on).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitops_tool.errors import GitopsError

if TYPE_CHECKING:
    from gitops_tool.config.model import PlatformInstance

MIB = 1024 * 1024
# Fitted to bench/mlflow_rss.py (MLflow 3.17.2, Python 3.11, December 2026): off, 1 worker 506 MiB and
# 2 workers 797 MiB; on, 1 worker 1671 MiB and 2 workers 2193 MiB (13 processes). Each worker adds
# ~291 MiB; the CLI parent, uvicorn's supervisor and (when on) the job runner and its consumers are the base.
MEASURED_MIB = {
    False: {"base": 215, "per_worker": 291},   # job execution off
    True: {"base": 1611, "per_worker": 291},   # job execution on: job runner + 7 huey consumers
}
HEADROOM = 1.25  # request spikes (artifact proxying, search) on top of the idle figure
_UNITS = {"Ki": 1024, "Mi": MIB, "Gi": 1024 * MIB, "Ti": 1024 * 1024 * MIB,
          "K": 1000, "M": 1000 ** 2, "G": 1000 ** 3, "T": 1000 ** 4}


def quantity_bytes(value: str | int) -> int:
    """A Kubernetes memory quantity (512Mi, 2Gi, 1G, 1073741824) in bytes."""
    text = str(value)
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * _UNITS[suffix])
    return int(float(text))


def mlflow_need_mib(workers: int, job_execution: bool) -> int:
    """Memory one MLflow pod needs at `workers` uvicorn workers, with headroom."""
    figures = MEASURED_MIB[job_execution]
    return int((figures["base"] + figures["per_worker"] * workers) * HEADROOM)


def check_memory(inst: PlatformInstance, job_execution: bool, where: str) -> None:
    """An instance whose MLflow limit is below the measured need would be OOM-killed: refuse it."""
    limit = inst.resources.get("limits", {}).get("memory")
    if limit is None:
        return
    need = mlflow_need_mib(inst.workers, job_execution)
    if quantity_bytes(limit) < need * MIB:
        mode = "with job execution on" if job_execution else "with job execution off"
        raise GitopsError(
            f"{where}: limits.memory {limit} is below what MLflow needs at {inst.workers} workers {mode} "
            f"(about {need}Mi, measured; docs/reliability.md): raise the limit or lower workers"
            + ("" if not job_execution else ", or set platform.mlflow.job_execution: false"))
