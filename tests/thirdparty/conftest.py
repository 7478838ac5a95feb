"""Third-party clients run unmodified against the sandboxes (issue 19, item 6).

The clients are installed, pinned (``requirements.txt``), into a venv of their own,
``.venv/thirdparty``, by ``scripts/ensure-test-deps.sh`` (``make test`` and CI run it before
pytest), so they cannot disturb koppel's pinned Airflow environment. Each client runs as a
subprocess of that venv with only its base URL (and OAuth token URL) pointed at a sandbox."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
THIRDPARTY_PYTHON = ROOT / ".venv" / "thirdparty" / "bin" / "python"

# The sandbox fixtures live beside the sandbox tests (tests/sandbox/*_fixtures.py).
sys.path.insert(0, str(ROOT / "tests" / "sandbox"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "thirdparty: runs a third-party client (Singer tap, SDK) unmodified "
        "against a sandbox, from the separate venv .venv/thirdparty")


@pytest.fixture(scope="session")
def thirdparty_python() -> Path:
    """The interpreter of the third-party venv; a clear failure when it is missing."""
    if not THIRDPARTY_PYTHON.exists():
        pytest.fail(f"{THIRDPARTY_PYTHON} is missing: run `bash scripts/ensure-test-deps.sh` "
                    "(make test does) to install tests/thirdparty/requirements.txt")
    return THIRDPARTY_PYTHON
