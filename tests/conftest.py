"""Suite-wide set-up: one Airflow home and one koppel state database for the whole run.

The environment is set at import time, before any test module imports Airflow, because
Airflow reads its configuration once, when it is first imported."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="koppel-test-airflow-"))

os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__TEST_CONNECTION"] = "Enabled"
os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(_HOME / "logs")
os.environ["KOPPEL_STATE_DB_URL"] = f"sqlite:///{_HOME / 'koppel_state.db'}"
os.environ["KOPPEL_MAPPINGS_DIR"] = str(ROOT / "include" / "mappings")
# python-quickbooks (requests-oauthlib) refuses plain http unless told otherwise; the
# sandboxes serve http on loopback only.
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """A migrated Airflow metadata database (SQLite) shared by every end-to-end test."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True,
                   capture_output=True, env=os.environ.copy(), timeout=600)
    return airflow_home


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(autouse=True, scope="session")
def whole_limit_per_task():
    """In production each task paces to its share of an API's limits, so a full pool of
    concurrent tasks stays under them (``koppel.pools.task_share``). ``dag.test()`` runs
    one task at a time, so here a task may use the whole limit — as a pool of one slot.
    The shares themselves are checked by ``tests/unit/test_cli_pools.py`` and, with real
    pools and two Celery workers, by ``tests/integration`` (its workers are processes of
    their own and do not see this patch)."""
    from koppel import pools

    real = pools.task_share
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pools, "task_share", lambda api, limit: limit)
        yield real
