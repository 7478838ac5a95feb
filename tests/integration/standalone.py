"""``make airflow`` (``python -m koppel.demo --standalone``) on a fresh home, as a new user
runs it: shared by the tests that start it (test_make_airflow.py,
test_operator_path_browser.py)."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_of(home: Path) -> list[int]:
    """Processes (ours) running with ``AIRFLOW_HOME=home``: the demo and every Airflow
    component standalone started, whatever process group they are in."""
    marker = f"AIRFLOW_HOME={home}".encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes() and \
                    b"zombie" not in (entry / "status").read_bytes().lower():
                found.append(int(entry.name))
        except OSError:  # gone, or not ours
            continue
    return found


def standalone_env(home: Path) -> dict[str, str]:
    """The environment of a new user's shell: the venv is not activated, its bin
    directory not on PATH; no Airflow or koppel state settings of the test suite."""
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "KOPPEL_STATE"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and Path(p).resolve() != Path(venv_bin).resolve())
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "KOPPEL_MAPPINGS_DIR": str(ROOT / "include" / "mappings"),
    })
    return env
