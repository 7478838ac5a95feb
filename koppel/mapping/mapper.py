"""The datamapper: an enriched Lightspeed record in, a canonical record dict out.

    mapper = Mapper("orders", tenant.rules("orders"), tables=tenant.tables())
    result = mapper.map(enriched_order)
    result.values   # {"source_id": "123", "customer": {...}, "lines": [...], ...}
    result.errors   # [MappingError(record_id="123", field="lines[0].tax_rate", message=...)]

A transform failure is a per-record, per-field :class:`MappingError`; the field is left
``None`` and the rest of the record is still mapped, so one bad value never crashes a
run. Each mapped value is coerced to its target kind (:mod:`koppel.mapping.targets`).

:meth:`Mapper.fields_for_update` and :func:`split_create_update` tell create payloads
(every mapped field) from update payloads (``on: "always"`` fields only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Mapping

from koppel.mapping.paths import is_empty
from koppel.mapping.rules import FieldRule, is_each_rule, rules_dict, validate_rules
from koppel.mapping.targets import FLOW_TARGETS, resolve_target
from koppel.mapping.transforms import (
    TransformContext,
    TransformError,
    parse_datetime,
    parse_decimal,
    run_chain,
)
from koppel.mapping.transforms import ToBool as _ToBool

_TO_BOOL = _ToBool()


@dataclass(frozen=True)
class MappingError:
    """One field of one record that could not be mapped."""

    record_id: str | None
    field: str
    message: str

    def __str__(self) -> str:
        return f"record {self.record_id}: {self.field}: {self.message}"


@dataclass
class MappingResult:
    """What :meth:`Mapper.map` returns: the canonical dict and the field errors."""

    values: dict[str, Any]
    errors: list[MappingError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class FieldSplit:
    """Target fields by update policy (dotted names; list rules by their own name)."""

    always: frozenset[str]
    create_only: frozenset[str]


class Mapper:
    """Maps source records of one flow with a fixed, validated set of rules.

    ``rules`` is ``{target: rule}`` — validated rule objects (``tenant.rules(flow)``) or
    raw JSON-like rules, validated here. ``tables`` are the settings lookup tables
    (``payment_methods``, ``payment_terms``, ``countries``, ``tax_codes``).
    ``id_path`` names the source record id used in errors.
    """

    def __init__(
        self,
        flow: str,
        rules: Mapping[str, Any],
        tables: Mapping[str, Mapping[str, Any]] | None = None,
        id_path: str = "id",
    ) -> None:
        self.flow = flow
        self.rules = validate_rules(flow, rules)
        self.tables = dict(tables or {})
        self.id_path = id_path
        self._tree = FLOW_TARGETS[flow]

    @classmethod
    def for_tenant(cls, tenant: Any, flow: str) -> "Mapper":
        """The mapper of ``flow`` for a loaded ``TenantConfig`` (merged rules, update
        policy applied, settings tables)."""
        return cls(flow, tenant.rules(flow), tables=tenant.tables())

    # ---------------------------------------------------------------- mapping

    def map(self, source: Mapping[str, Any]) -> MappingResult:
        """Map one enriched source record; never raises for bad data."""
        record_id = source.get(self.id_path) if isinstance(source, Mapping) else None
        record_id = None if record_id is None else str(record_id)
        errors: list[MappingError] = []
        values = self._map_fields(self.rules, self._tree, source, source, record_id, "", errors)
        return MappingResult(values=values, errors=errors)

    def _map_fields(self, rules, tree, record, root, record_id, prefix, errors) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for target, rule in rules.items():
            node = resolve_target(tree, target)
            label = f"{prefix}{target}"
            if is_each_rule(rule):
                value = self._map_each(rule, node[0], record, root, record_id, label, errors)
            else:
                try:
                    value = _coerce(self._evaluate(rule, record, root), node)
                except TransformError as exc:
                    errors.append(MappingError(record_id, label, str(exc)))
                    value = None
            _set_dotted(values, target, value)
        return values

    def _map_each(self, rule, row_tree, record, root, record_id, label, errors) -> list[dict[str, Any]]:
        context = TransformContext(record, root, self.tables)
        items = context.get(rule.each)
        if is_empty(items):
            return []
        if not isinstance(items, list):
            errors.append(MappingError(record_id, label, f"{rule.each!r} is not a list"))
            return []
        row_rules = rules_dict(rule.fields)
        return [
            self._map_fields(row_rules, row_tree, item, root, record_id, f"{label}[{index}].", errors)
            for index, item in enumerate(items)
        ]

    def _evaluate(self, rule: FieldRule, record, root) -> Any:
        context = TransformContext(record, root, self.tables)
        if rule.has_const:
            value = rule.const
        elif rule.paths:
            value = next((v for v in (context.get(p) for p in rule.paths) if not is_empty(v)), None)
        else:
            value = context.get(rule.path)
        return run_chain(rule.transforms, value, context)

    # ---------------------------------------------------------------- update policy

    def fields_for_update(self) -> FieldSplit:
        """Which targets are written on updates (``always``) and which only on create."""
        always: set[str] = set()
        create_only: set[str] = set()
        for target, rule in self.rules.items():
            (create_only if rule.on == "create_only" else always).add(target)
            if is_each_rule(rule):
                for name, sub_rule in rules_dict(rule.fields).items():
                    (create_only if sub_rule.on == "create_only" else always).add(f"{target}[].{name}")
        return FieldSplit(always=frozenset(always), create_only=frozenset(create_only))


def split_create_update(values: Mapping[str, Any], rules: Mapping[str, Any] | Mapper, flow: str | None = None):
    """``(create_values, update_values)`` for mapped ``values``.

    Create values are all mapped values; update values leave out ``create_only`` fields
    (for list rules also per row field). ``rules`` is a :class:`Mapper` or its rules
    (validated rule objects, or raw rules together with ``flow``).
    """
    if isinstance(rules, Mapper):
        rules = rules.rules
    elif flow is not None:
        rules = validate_rules(flow, rules)
    create = _deep_copy(values)
    update = _deep_copy(values)
    for target, rule in rules.items():
        if rule.on == "create_only":
            _pop_dotted(update, target)
            continue
        if is_each_rule(rule):
            rows = _get_dotted(update, target)
            if isinstance(rows, list):
                for name, sub_rule in rules_dict(rule.fields).items():
                    if sub_rule.on == "create_only":
                        for row in rows:
                            if isinstance(row, dict):
                                _pop_dotted(row, name)
    return create, update


# ---------------------------------------------------------------- helpers


def _coerce(value: Any, kind: Any) -> Any:
    """Coerce a mapped value to its target kind; ``TransformError`` when impossible."""
    if kind == "any":
        return None if value is None else value
    if kind in ("list", "dict"):
        if is_empty(value):
            return [] if kind == "list" else {}
        expected = list if kind == "list" else dict
        if kind == "list" and isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, expected):
            raise TransformError(f"expected a {kind}, got {type(value).__name__}")
        if kind == "list":
            return [item for item in value if not is_empty(item)]
        return value
    if kind == "bool":
        if value is None:
            return None
        return _TO_BOOL.apply(value, TransformContext({}))
    if is_empty(value):
        return None
    if kind == "str":
        if isinstance(value, (dict, list, tuple)) or isinstance(value, bool):
            raise TransformError(f"expected text, got {type(value).__name__}")
        if isinstance(value, (datetime, date)):
            return value.isoformat()
        return str(value).strip() or None
    if kind == "decimal":
        return parse_decimal(value)
    if kind == "int":
        number = parse_decimal(value)
        if number != number.to_integral_value():
            raise TransformError(f"not a whole number: {value!r}")
        return int(number)
    if kind == "datetime":
        return parse_datetime(value)
    if isinstance(kind, dict):
        raise TransformError("a nested record cannot be mapped as one field; map its fields")
    return value


def _set_dotted(target: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for name in parents:
        target = target.setdefault(name, {})
    target[last] = value


def _get_dotted(source: Mapping, dotted: str) -> Any:
    current: Any = source
    for name in dotted.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(name)
    return current


def _pop_dotted(target: dict, dotted: str) -> None:
    *parents, last = dotted.split(".")
    for name in parents:
        target = target.get(name)
        if not isinstance(target, dict):
            return
    target.pop(last, None)


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_deep_copy(item) for item in value]
    return value
