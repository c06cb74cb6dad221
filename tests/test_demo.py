"""The README's first command, end to end: real MLflow, real receiver, real Git remote, real promotions."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def test_demo_runs_the_whole_loop_and_leaves_no_process(tmp_path: Path):
    workdir = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "gitops_tool.cli.main", "demo", "--dir", str(workdir), "--keep", "--output", "json"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    subjects = [c["subject"] for c in summary["commits"]]
    assert subjects[:6] == [
        "promote(prod): wine-classifier 1 -> 2 (@champion)",
        "release(prod): wine-classifier hold lifted at 1",
        "rollback(prod): wine-classifier 2 -> 1 (hold)",
        "promote(prod): wine-classifier 1 -> 2 (@champion)",
        "promote(dev): wine-classifier none -> 2 (@candidate)",
        "promote(prod): wine-classifier none -> 1 (@champion)",
    ]
    log = subprocess.run(["git", "log", "--format=%(trailers:key=Trigger,valueonly)", "main"],
                         cwd=workdir / "origin.git", capture_output=True, text=True, check=True).stdout.split()
    assert log[:6] == ["reconcile", "release", "rollback", "webhook", "webhook", "webhook"]
    assert len(summary["latencies_s"]) == 3 and all(0 < x < 30 for x in summary["latencies_s"])
    assert [s["status"] for s in summary["steps"]] == ["ok"] * len(summary["steps"])
    rows = {r["env"]: r for r in summary["final_status"]}
    # The demo ends consistent: the hold is lifted and reconcile re-promoted @champion.
    assert rows["prod"]["git_version"] == "2" and rows["prod"]["hold"] is None and rows["prod"]["aliases"] == {"champion": "2"}
    assert rows["dev"]["git_version"] == "2" and summary["drift"] == []
    # The registry tells what happened to each version it promoted (gitops.<env> tags, read back from MLflow).
    tags, head = summary["tags"], summary["commits"][0]["sha"]
    assert (tags["2"]["prod"]["state"], tags["2"]["prod"]["trigger"], tags["2"]["prod"]["commit"]) == (
        "committed", "reconcile", head)
    assert (tags["1"]["prod"]["state"], tags["1"]["prod"]["trigger"]) == ("committed", "rollback")
    assert tags["2"]["dev"]["state"] == "committed" and tags["2"]["dev"]["alias_at"].endswith("Z")
    held = summary["held_tag"]["2"]["prod"]  # while rolled back, reconcile skipped @champion=2 for the hold
    assert (held["state"], held["reason"], held["trigger"]) == ("held", "rollback from 2 to 1", "reconcile")
    assert "mlflow server" in summary["mlflow_restart"] and str(workdir / "mlflow") in summary["mlflow_restart"]
    time.sleep(0.5)
    assert _processes_mentioning(str(workdir)) == []


def test_demo_refuses_a_non_empty_directory(tmp_path: Path):
    (tmp_path / "something").write_text("x")
    result = subprocess.run([sys.executable, "-m", "gitops_tool.cli.main", "demo", "--dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "not empty" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["something"]


def test_ctrl_c_stops_every_process_and_names_the_step(tmp_path: Path):
    import signal

    workdir = tmp_path / "demo"
    proc = subprocess.Popen([sys.executable, "-m", "gitops_tool.cli.main", "demo", "--dir", str(workdir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (workdir / "receiver.log").exists() and time.monotonic() < deadline:  # step 3: both servers up
        time.sleep(0.2)
    assert (workdir / "receiver.log").exists(), "the demo never reached its receiver step"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "demo interrupted at step" in err and "stopping every process it started" in err
    time.sleep(0.5)
    assert _processes_mentioning(str(workdir)) == []
