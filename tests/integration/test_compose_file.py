"""``docker-compose.yaml`` is checked without Docker: it parses, refers only to services,
files and volumes that exist, runs the lock's Airflow version on CeleryExecutor with
PostgreSQL and Redis, and holds no secrets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _airflow_services(services) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services.items() if name.startswith("airflow-")}


def _locked_airflow_version() -> str:
    match = re.search(r"^apache-airflow==([\w.]+)", (ROOT / "requirements.txt").read_text(),
                      re.MULTILINE)
    assert match, "requirements.txt pins apache-airflow"
    return match.group(1)


def test_every_dependency_is_a_service(services):
    for name, svc in services.items():
        depends = svc.get("depends_on") or {}
        for dependency in (depends if isinstance(depends, (list, dict)) else []):
            assert dependency in services, f"{name} depends on unknown service {dependency}"


def test_build_contexts_files_and_volumes_exist(compose, services):
    named_volumes = set(compose.get("volumes") or {})
    for name, svc in services.items():
        build = svc.get("build")
        if build is not None:
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            assert context.is_dir() and (context / dockerfile).is_file(), name
        for volume in svc.get("volumes") or []:
            source = (volume if isinstance(volume, str) else volume["source"]).split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in named_volumes, f"{name} uses undeclared volume {source}"
        for env_file in svc.get("env_file") or []:
            path = env_file if isinstance(env_file, str) else env_file["path"]
            required = True if isinstance(env_file, str) else env_file.get("required", True)
            # .env is the operator's own copy of .env.example, never in the repository
            assert (ROOT / path).exists() or (not required and (ROOT / f"{path}.example").exists()), path


def test_dockerfile_copies_existing_files_and_uses_the_locked_airflow():
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM apache/airflow:([\d.]+)", dockerfile, re.MULTILINE)
    assert base and base.group(1) == _locked_airflow_version()
    for line in re.findall(r"^COPY\s+(?:--\S+\s+)*(.+)$", dockerfile, re.MULTILINE):
        *sources, _target = line.split()
        for source in sources:
            assert (ROOT / source).exists(), f"the Dockerfile copies missing {source}"


def test_production_topology(services):
    for name in ("postgres", "redis", "airflow-apiserver", "airflow-scheduler",
                 "airflow-dag-processor", "airflow-worker", "airflow-triggerer", "airflow-init"):
        assert name in services, name
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    for name, svc in _airflow_services(services).items():
        env = svc["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://"), name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://"), name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-apiserver:"), name
        assert "AIRFLOW__API_AUTH__JWT_SECRET" in env, name
        assert env["AIRFLOW_CONN_KOPPEL_STATE"].startswith("postgresql://"), name
    init = " ".join(services["airflow-init"]["command"])
    assert "airflow db migrate" in init and "koppel pools --apply" in init


def test_no_secrets_in_the_file():
    text = COMPOSE.read_text()
    # every secret is a reference to the environment (.env) without a default value
    for key in ("POSTGRES_PASSWORD", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
        references = re.findall(r"\$\{" + key + r"(:?[-?][^}]*)?\}", text)
        assert references, f"{key} is not taken from the environment"
        assert all(not ref.lstrip(":").startswith("-") for ref in references), \
            f"{key} has a default value in the compose file"
        for value in re.findall(rf"^\s*{key}:\s*(\S+)", text, re.MULTILINE):
            assert value.startswith("${"), f"{key} has a literal value in the compose file"
    assert not re.search(r"(api_key|api_secret|client_secret|refresh_token|password)\W*[:=]\s*[\"']?\w",
                         text.replace("POSTGRES_PASSWORD: ${", ""), re.I)
    example = (ROOT / ".env.example").read_text()
    for key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
        assert re.search(rf"^{key}=\s*$", example, re.MULTILINE), f"{key} is empty in .env.example"
