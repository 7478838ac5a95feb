"""Every command in the README's shell blocks works as written: each is run (on the test
suite's Airflow home, standing in for ``.airflow``) or skipped by the explicit list below
with the test that covers it. A command the README gains that is neither run nor listed
fails :func:`test_every_readme_command_is_run_or_covered`."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent

#: long-running or Docker-bound commands, by their first words, with what covers them
SKIPPED = {
    "make demo": "runs every flow of the demo tenant: tests/flows/* run each flow end to end",
    "make test": "the whole suite",
    "make airflow": "tests/integration/test_make_airflow.py",
    "cp .env.example .env": "compose set-up; test_env_example_exists checks the file",
    "docker compose": "needs Docker: tests/integration/test_compose_file.py",
}
#: commands run by the tests of this file, by their first words
RUN = ("export AIRFLOW_HOME=", "export AIRFLOW_CONN_", ".venv/bin/koppel validate",
       ".venv/bin/koppel pools", ".venv/bin/airflow dags list", "airflow dags trigger",
       "airflow backfill create")


def _raw_commands() -> list[str]:
    """The commands of the README's ```bash blocks as written (for bash): a continued
    line or a multi-line quoted argument is part of its command; comments stay (bash
    drops them) and blank lines go."""
    out, pending = [], ""
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        for line in block.splitlines():
            pending += line + "\n"
            if pending.rstrip().endswith("\\"):
                continue
            try:
                words = shlex.split(pending, comments=True)
            except ValueError:
                continue
            if words:
                out.append(pending.strip())
            pending = ""
    return out


def _matching(prefix: str) -> list[str]:
    return [c for c in _raw_commands() if c.startswith(prefix)]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory, airflow_db):
    """A directory laid out as the checkout is for these commands: ``.venv`` and
    ``.airflow`` (here the suite's migrated home, with the settings ``make demo`` and
    ``make airflow`` pin into ``airflow.cfg``)."""
    from koppel.demo import pin_config

    pin_config(airflow_db)
    where = tmp_path_factory.mktemp("checkout")
    (where / ".venv").symlink_to(VENV_BIN.parent)
    (where / ".airflow").symlink_to(airflow_db)
    for name in ("include", "dags"):  # the tenant files and DAGs a user's checkout has
        (where / name).symlink_to(ROOT / name)
    # what the running `make airflow` does: its DAG processor writes the DAGs to the
    # metadata database, where `airflow dags list` and `trigger` read them
    done = _bash("export AIRFLOW_HOME=$PWD/.airflow\nairflow dags reserialize", where)
    assert done.returncode == 0, done.stderr[-3000:]
    return where


def _bash(script: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """``script`` in bash as a new shell would run it: no AIRFLOW_* settings but what the
    script exports; the venv's bin on PATH as after ``source .venv/bin/activate``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("KOPPEL_MAPPINGS_DIR", None)  # the checkout's include/mappings, as for a user
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_every_readme_command_is_run_or_covered():
    commands = _raw_commands()
    assert commands, "no shell commands found in README.md"
    unknown = [c for c in commands
               if not c.startswith(RUN) and not any(c.startswith(s) for s in SKIPPED)]
    assert unknown == [], f"README commands neither run nor listed in SKIPPED: {unknown}"
    for prefix in RUN:
        assert _matching(prefix), f"{prefix!r} is no longer in README.md: update RUN"


def test_env_example_exists():
    assert (ROOT / ".env.example").is_file()


def test_koppel_and_airflow_commands_in_another_shell(checkout):
    """The block after ``make airflow``: validate, pools and the DAG list on the home."""
    (home,) = _matching("export AIRFLOW_HOME=")
    script = "\n".join([home, *_matching(".venv/bin/koppel validate"),
                        "echo '--- pools'", *_matching(".venv/bin/koppel pools"),
                        "echo '--- dags'", *_matching(".venv/bin/airflow dags list")])
    done = _bash(script, checkout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    validate, rest = done.stdout.split("--- pools\n")
    pools, dags = rest.split("--- dags\n")
    assert "demo" in validate
    assert [line.split()[:2] for line in pools.strip().splitlines()] == [
        ["koppel_demo_lightspeed", "3"], ["koppel_demo_quickbooks", "4"]]
    listed = set(re.findall(r"\b(\w+__demo)\b", dags))
    assert {"orders__demo", "products__demo", "stock__demo", "customers__demo",
            "refunds__demo"} <= listed, dags[-2000:]


def test_manual_runs_and_the_backfill_example(checkout):
    """The Params examples queue runs with exactly that conf; the backfill example,
    checked with ``--dry-run``, is the 5 runs of one hour of a 15-minute schedule."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    triggers = _matching("airflow dags trigger")
    (backfill,) = _matching("airflow backfill create")
    assert "--max-active-runs 1" in backfill
    (home,) = _matching("export AIRFLOW_HOME=")
    done = _bash("\n".join([home, *triggers, f"{backfill} --dry-run"]), checkout, timeout=420)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    confs = [json.loads(shlex.split(t)[shlex.split(t).index("--conf") + 1]) for t in triggers]
    assert confs == [{"records": ["ORD00003"], "dry_run": True},
                     {"since": "2025-06-01", "until": "2025-06-30"}]
    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == "orders__demo",
                                            DagRun.run_type == "manual").all()
        queued = sorted((r.conf for r in runs), key=json.dumps)
        for run in runs:  # leave the shared home as it was
            session.delete(run)
    assert queued == sorted(confs, key=json.dumps)
    dates = re.findall(r"2025-06-30[T ](\d\d:\d\d):00", done.stdout)
    assert sorted(set(dates)) == ["10:00", "10:15", "10:30", "10:45", "11:00"], done.stdout


def test_connection_exports_are_valid_connections(checkout):
    """The ``AIRFLOW_CONN_*`` examples parse as Airflow connections of koppel's types."""
    exports = _matching("export AIRFLOW_CONN_")
    assert len(exports) == 2
    check = ("import os; from airflow.models.connection import Connection; "
             "print(' '.join(f'{k}={Connection.from_json(v, conn_id=k).conn_type}' "
             "for k, v in sorted(os.environ.items()) if k.startswith('AIRFLOW_CONN_')))")
    done = _bash("\n".join([*exports, f"{sys.executable} -c \"{check}\""]), checkout)
    assert done.returncode == 0, done.stderr[-3000:]
    # Airflow may log a warning first: the answer is the last line
    assert done.stdout.strip().splitlines()[-1].split() == [
                                   "AIRFLOW_CONN_LIGHTSPEED_ACME=lightspeed_ecom",
                                   "AIRFLOW_CONN_QUICKBOOKS_ACME=quickbooks_online"]
