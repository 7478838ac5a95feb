"""Where the tenant files are and how a task finds its tenant's validated config.

Light on purpose: the DAG factory and every task start-up call it. Below the steps and
the flows (docs/architecture.md, "Layers")."""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path


def mappings_dir() -> Path:
    """``KOPPEL_MAPPINGS_DIR``, else the project's ``include/mappings`` (next to ``dags/``)."""
    env = os.environ.get("KOPPEL_MAPPINGS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "include" / "mappings"


@lru_cache(maxsize=64)
def _tenant_set(directory: str, only: str | None = None):
    """The tenant files of ``directory``, validated: every file, or with ``only`` the
    file of that one tenant (what a task needs, at a fraction of the cost).

    A single tenant is held to the same cross-tenant rule as in a full load: tenants
    that share a Lightspeed connection, or a QuickBooks one without distinct document
    number prefixes, are all rejected. Its connections are compared with the other
    files' (read as JSON, not validated); only files that share one are validated too,
    so the outcome for the tenant is the one a full load would give.

    Cached per process (a DAG-processor parse and a task each run in a fresh one);
    ``_tenant_set.cache_clear()`` makes the next call read the files again."""
    from koppel.tenants.loader import load_tenants

    if only is None:
        return load_tenants(Path(directory))
    return load_tenants(Path(directory), only=[only, *_sharing_connections(Path(directory), only)])


def _sharing_connections(directory: Path, tenant_id: str) -> list[str]:
    """The other tenant files whose raw JSON names one of ``tenant_id``'s connections."""
    from koppel.tenants.loader import tenant_files

    files = {path.stem: path for path in tenant_files(directory)}
    own = _raw_connections(files.get(tenant_id))
    if not own:
        return []
    ids = {conn_id for _, conn_id in own}
    return sorted(other for other, path in files.items()
                  if other != tenant_id and own & _raw_connections(path, ids))


def _raw_connections(path: Path | None,
                     only_if_naming: set[str] | None = None) -> set[tuple[str, str]]:
    """``{("lightspeed", conn_id), ("quickbooks", conn_id)}`` from a tenant file as it is
    written; nothing for a file that does not parse (the loader reports it).

    ``only_if_naming``: connection ids the caller looks for; a file that cannot name
    any of them (:func:`_may_name`) is not parsed, and nothing is returned for it. A
    worker starting a task compares its tenant's connections with every other file's,
    so most files end here."""
    if path is None:
        return set()
    try:
        text = path.read_text(encoding="utf-8")
        if only_if_naming is not None and not _may_name(text, only_if_naming):
            return set()
        connections = json.loads(text).get("connections")
    except (OSError, ValueError, AttributeError):
        return set()
    if not isinstance(connections, dict):
        return set()
    return {(kind, value) for kind in ("lightspeed", "quickbooks")
            if isinstance(value := connections.get(kind), str)}


#: a JSON escape that stands for an ASCII character (as ``\\u005f`` does; ``\\u2026`` is "…")
_ASCII_ESCAPE = re.compile(r'\\(?:["\\/bfnrt]|u00[0-7][0-9A-Fa-f])')


def _may_name(text: str, conn_ids: set[str]) -> bool:
    """Whether the JSON ``text`` can hold a string equal to one of ``conn_ids``: when it
    holds one of them as written, or an escape that could spell one — any ``\\``, or
    for ids of ASCII characters only an escape that stands for an ASCII character (a
    string equal to such an id is made of ASCII characters, each written as itself or
    as such an escape)."""
    if any(conn_id in text for conn_id in conn_ids):
        return True
    if "\\" not in text:
        return False
    if all(conn_id.isascii() for conn_id in conn_ids):
        return _ASCII_ESCAPE.search(text) is not None
    return True


def load_tenant(tenant_id: str):
    """The validated config of one tenant, as a task sees it at run time (only that
    tenant's file is validated, see :func:`_tenant_set`)."""
    tenant_set = _tenant_set(str(mappings_dir()), tenant_id)
    tenant = tenant_set.get(tenant_id)
    if tenant is not None:
        return tenant
    problems = [str(e) for e in tenant_set.errors]
    raise LookupError(f"tenant {tenant_id!r} has no valid file in {mappings_dir()}"
                      + (f"; problems: {'; '.join(problems)}" if problems else ""))
