"""Load and validate every tenant file of a directory.

    tenants = load_tenants("include/mappings")
    for tenant in tenants:             # valid TenantConfig objects, sorted by file name
        ...
    for problem in tenants.errors:     # TenantError(file, path, message), per file
        ...

Files: every ``*.json`` except names starting with ``_`` or ``.`` and ``*.schema.json``.
The tenant id must equal the file name (``acme.json`` → ``"tenant": "acme"``). Each
tenant's ``mappings`` are merged over the default mapping per field before validation.
The default is ``<directory>/_default.json`` when an installation puts one there, else
the one shipped in the package (``koppel/mapping/default_mapping.json``).
A broken file never hides the others.

Light on purpose: the DAG factory calls this at DAG-parse time (pydantic and the
standard library only).
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from pydantic import ValidationError

from koppel.mapping.defaults import DEFAULT_MAPPING_FILE, PACKAGED_DEFAULT_MAPPING
from koppel.mapping.rules import MappingSet, merge_raw_mappings, prevalidated_mappings
from koppel.tenants.errors import TenantError, from_validation_error
from koppel.tenants.model import TenantConfig, tenant_json_schema


@dataclass
class TenantSet:
    """Valid tenants and the problems found, from one directory."""

    tenants: list[TenantConfig] = field(default_factory=list)
    errors: list[TenantError] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    def __iter__(self) -> Iterator[TenantConfig]:
        return iter(self.tenants)

    def __len__(self) -> int:
        return len(self.tenants)

    @property
    def ok(self) -> bool:
        return not self.errors

    def get(self, tenant_id: str) -> TenantConfig | None:
        return next((tenant for tenant in self.tenants if tenant.tenant == tenant_id), None)

    def ids(self) -> list[str]:
        return [tenant.tenant for tenant in self.tenants]


def tenant_files(directory: str | Path) -> list[Path]:
    """The tenant files of ``directory``, sorted by name."""
    folder = Path(directory)
    try:
        with os.scandir(folder) as entries:  # is_file() without a stat per file
            names = [entry.name for entry in entries
                     if entry.name.endswith(".json") and not entry.name.startswith(("_", "."))
                     and not entry.name.endswith(".schema.json") and entry.is_file()]
    except OSError:  # no such directory (reported by load_tenants), not a directory
        return []
    return [folder / name for name in sorted(names)]


def read_json(path: Path, label: str | None = None) -> tuple[Any, list[TenantError]]:
    """Parse a JSON file; syntax errors name line and column, duplicate keys are errors."""
    label = label or str(path)
    duplicates: list[str] = []

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                duplicates.append(key)
            result[key] = value
        return result

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, [TenantError(label, "$", f"not UTF-8 text (byte {exc.start})")]
    except OSError as exc:
        return None, [TenantError(label, "$", f"cannot read file: {exc.strerror or exc}")]
    try:
        data = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        return None, [TenantError(label, "$", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")]
    problems = [TenantError(label, "$", f"duplicate key {key!r} (only the last one would count)") for key in duplicates]
    return data, problems


def load_default_mapping(directory: str | Path | None = None) -> tuple[dict[str, Any], list[TenantError]]:
    """The raw default mapping and its problems.

    Reads ``<directory>/_default.json`` when it exists, else the packaged copy. When the
    directory's copy is broken its problems are returned and the packaged default is
    used, so tenant files can still be checked."""
    candidates = []
    if directory is not None and (Path(directory) / DEFAULT_MAPPING_FILE).is_file():
        candidates.append(Path(directory) / DEFAULT_MAPPING_FILE)
    candidates.append(PACKAGED_DEFAULT_MAPPING)
    problems: list[TenantError] = []
    for path in candidates:
        data, errors = read_json(path)
        if not errors:
            if not isinstance(data, dict):
                errors = [TenantError(str(path), "$", "must be a JSON object")]
            else:
                try:
                    MappingSet.model_validate(data)
                except ValidationError as exc:
                    errors = from_validation_error(str(path), exc, data, MappingSet.model_json_schema(by_alias=True))
        if not errors:
            return data, problems
        problems.extend(errors)
    return {}, problems


def prevalidated_default(default_mappings: dict[str, Any]) -> dict[str, Any]:
    """The default mapping as :func:`parse_tenant` merges tenants over it fastest: its
    rules validated once (:func:`koppel.mapping.rules.prevalidated_mappings`), so each
    tenant's validation checks only the rules the tenant writes itself. Cached per
    process by the default's content (the shipped default, or an installation's own
    ``_default.json`` as it reads now); a default that does not validate is returned as
    it is (its problems are reported by :func:`load_default_mapping`)."""
    if not default_mappings:
        return default_mappings
    try:
        key = json.dumps(default_mappings, sort_keys=True)
    except (TypeError, ValueError):  # not JSON data (already prevalidated, or a caller's own)
        return default_mappings
    cached = _PREVALIDATED.get(key)
    if cached is None:
        try:
            cached = prevalidated_mappings(copy.deepcopy(default_mappings))
        except ValidationError:
            return default_mappings
        if len(_PREVALIDATED) >= 8:
            _PREVALIDATED.clear()
        _PREVALIDATED[key] = cached
    return cached


#: the content of a default mapping (JSON, keys sorted) → its prevalidated form
_PREVALIDATED: dict[str, dict[str, Any]] = {}


def parse_tenant(data: Any, label: str, default_mappings: dict[str, Any], expected_id: str | None = None) -> tuple[TenantConfig | None, list[TenantError]]:
    """Validate one tenant's parsed JSON (``mappings`` merged over ``default_mappings``,
    the raw default or its :func:`prevalidated_default` form: the same result)."""
    if not isinstance(data, dict):
        return None, [TenantError(label, "$", f"a tenant file must be a JSON object (got {type(data).__name__})")]
    merged = dict(data)
    overrides = data.get("mappings", {})
    if isinstance(overrides, dict):
        merged["mappings"] = merge_raw_mappings(default_mappings, overrides)
    try:
        tenant = TenantConfig.model_validate(merged)
    except ValidationError as exc:
        return None, from_validation_error(label, exc, merged, tenant_json_schema())
    if expected_id is not None and tenant.tenant != expected_id:
        return None, [TenantError(label, "$.tenant", f"must match the file name {expected_id!r} (got {tenant.tenant!r})")]
    return tenant, []


def load_tenant_file(path: str | Path, default_mappings: dict[str, Any] | None = None) -> tuple[TenantConfig | None, list[TenantError]]:
    """Load one tenant file; ``(tenant, [])`` or ``(None, problems)``."""
    path = Path(path)
    if default_mappings is None:
        default_mappings = prevalidated_default(load_default_mapping(path.parent)[0])
    data, problems = read_json(path)
    if problems:
        return None, problems
    return parse_tenant(data, str(path), default_mappings, expected_id=path.stem)


def load_tenants(directory: str | Path, only: Sequence[str] | None = None) -> TenantSet:
    """Load every tenant file of ``directory`` (or only the tenant ids in ``only``).

    Problems with the default mapping are reported too (against ``_default.json``).
    A missing directory or an unknown tenant id in ``only`` is a problem, not an
    exception."""
    folder = Path(directory)
    result = TenantSet()
    if not folder.is_dir():
        result.errors.append(TenantError(str(folder), "$", "no such directory"))
        return result
    default_mappings, default_problems = load_default_mapping(folder)
    result.errors.extend(default_problems)
    default_mappings = prevalidated_default(default_mappings)
    files = tenant_files(folder)
    if only:
        by_id = {path.stem: path for path in files}
        for tenant_id in only:
            if tenant_id not in by_id:
                result.errors.append(TenantError(str(folder / f"{tenant_id}.json"), "$", "no such tenant file"))
        files = [path for path in files if path.stem in set(only)]
    for path in files:
        tenant, problems = load_tenant_file(path, default_mappings)
        result.errors.extend(problems)
        if tenant is not None:
            result.tenants.append(tenant)
            result.files[tenant.tenant] = path
    _reject_shared_connections(result)
    return result


def _reject_shared_connections(result: TenantSet) -> None:
    """Tenants are isolated by their connections. Two tenants on one Lightspeed
    connection would sync one shop twice; two on one QuickBooks connection (two shops,
    one company) are fine only with distinct document-number prefixes, or their order
    numbers would collide and one shop's orders would be skipped as "already booked".
    Every tenant involved is rejected: guessing which one is meant is how books mix."""
    rejected: set[str] = set()
    by_conn: dict[tuple[str, str], list[TenantConfig]] = {}
    for tenant in result.tenants:
        by_conn.setdefault(("lightspeed", tenant.connections.lightspeed), []).append(tenant)
        by_conn.setdefault(("quickbooks", tenant.connections.quickbooks), []).append(tenant)
    for (kind, conn_id), sharing in sorted(by_conn.items()):
        if len(sharing) < 2:
            continue
        ids = sorted(t.tenant for t in sharing)
        if kind == "quickbooks":
            prefixes = [t.settings.doc_number_prefix for t in sharing]
            if all(prefixes) and len(set(prefixes)) == len(prefixes):
                continue
            why = ("share it only with a distinct settings.doc_number_prefix each, so "
                   "their order numbers cannot collide")
        else:
            why = "one shop is synced by one tenant"
        for tenant in sharing:
            others = ", ".join(i for i in ids if i != tenant.tenant)
            result.errors.append(TenantError(
                str(result.files[tenant.tenant]), f"$.connections.{kind}",
                f"connection '{conn_id}' is also used by tenant(s) {others}: {why}"))
            rejected.add(tenant.tenant)
    if rejected:
        result.tenants = [t for t in result.tenants if t.tenant not in rejected]
        for tenant_id in rejected:
            result.files.pop(tenant_id, None)
