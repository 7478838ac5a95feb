"""Mapping rules: how one canonical field gets its value from an enriched source record.

A rule is one of::

    "email"                                        # shorthand for {"path": "email"}
    {"path": "addressBillingCity", "transforms": ["trim"]}
    {"paths": ["mobile", "phone"]}                 # the first non-empty
    {"const": "EUR"}
    {"path": "content", "transforms": ["strip_html", {"fn": "truncate", "length": 4000}],
     "on": "create_only"}

and order rows are a nested list rule::

    "lines": {"each": "_rows", "fields": {"sku": {"path": "articleCode"}, ...}}

``on`` is ``always`` (default: written on create and update) or ``create_only`` (written
when the target record is created, left alone on updates).

Per flow the rules form a pydantic model generated from the canonical target fields
(:mod:`koppel.mapping.targets`), so an unknown target field, an unknown transform or a
bad argument fails validation at load time with its exact JSON path, and the generated
JSON Schema lists every field a user may map.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator
from typing_extensions import Annotated

from koppel.mapping.paths import check_path
from koppel.mapping.targets import FLOW_TARGETS
from koppel.mapping.transforms import TransformStep

OnPolicy = Literal["always", "create_only"]
Path = Annotated[str, BeforeValidator(check_path)]


def _rule_shorthand(value: Any) -> Any:
    if isinstance(value, str):
        return {"path": value}
    return value


#: the fields a rule takes its value from (exactly one of them)
_SOURCES = ("path", "paths", "const")


class FieldRule(BaseModel):
    """One target field: a source (``path``, ``paths`` or ``const``) and transforms."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Optional[Path] = Field(default=None, description="Dot path into the enriched source record.")
    paths: Optional[list[Path]] = Field(
        default=None, min_length=1, max_length=20, description="Several paths: the first non-empty value wins."
    )
    const: Any = Field(default=None, description="A constant value.")
    transforms: list[TransformStep] = Field(default_factory=list, max_length=30)
    on: OnPolicy = "always"

    @model_validator(mode="after")
    def _one_source(self) -> "FieldRule":
        # runs again whenever a validated rule is taken as it is (the default mapping's
        # rules for every tenant, see prevalidated_mappings): kept cheap
        fields_set = self.model_fields_set
        given = [name for name in _SOURCES if name in fields_set]
        if len(given) != 1:
            raise ValueError(
                "a rule needs exactly one of 'path', 'paths' or 'const'"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @property
    def has_const(self) -> bool:
        return "const" in self.model_fields_set


#: A rule: a source path (shorthand for ``{"path": ...}``) or a :class:`FieldRule` object.
Rule = Annotated[FieldRule, BeforeValidator(_rule_shorthand, json_schema_input_type=Union[Path, FieldRule])]


def _python_name(target: str) -> str:
    return target.replace(".", "__")


def _flatten(tree: Mapping[str, Any], prefix: str = ""):
    """Yield ``(dotted_target, node)`` for leaves and list sub-trees of ``tree``."""
    for name, node in tree.items():
        dotted = f"{prefix}{name}"
        if isinstance(node, dict):
            yield from _flatten(node, dotted + ".")
        else:
            yield dotted, node


def _fields_model(model_name: str, tree: Mapping[str, Any]) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "comment": (Optional[Union[str, list[str]]], Field(default=None, alias="$comment")),
    }
    for dotted, node in _flatten(tree):
        if isinstance(node, list):
            lines_model = _each_model(model_name + _python_name(dotted).title().replace("_", ""), node[0])
            fields[_python_name(dotted)] = (Optional[lines_model], Field(default=None, alias=dotted))
        else:
            fields[_python_name(dotted)] = (Optional[Rule], Field(default=None, alias=dotted))
    return create_model(  # type: ignore[call-overload]
        model_name,
        __config__=ConfigDict(extra="forbid", frozen=True, populate_by_name=False),
        __doc__=f"Mapping rules for the canonical fields of {model_name.removesuffix('Rules')}.",
        **fields,
    )


def _each_model(model_name: str, tree: Mapping[str, Any]) -> type[BaseModel]:
    row_model = _fields_model(model_name + "FieldRules", tree)
    return create_model(  # type: ignore[call-overload]
        model_name + "Rule",
        __config__=ConfigDict(extra="forbid", frozen=True),
        __doc__="A list target: one output element per element of the source list ``each``.",
        each=(Path, Field(default="_rows", description="Path of the source list (default: the order rows).")),
        fields=(row_model, Field(default_factory=row_model)),
        on=(OnPolicy, "always"),
    )


#: flow name → the generated pydantic model of its rules
FLOW_RULE_MODELS: dict[str, type[BaseModel]] = {
    flow: _fields_model(flow.title().replace("_", "") + "Rules", tree)
    for flow, tree in FLOW_TARGETS.items()
}


class MappingSet(BaseModel):
    """Rules for every flow (the ``mappings`` section of a tenant, or ``_default.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    comment: Optional[Union[str, list[str]]] = Field(default=None, alias="$comment")
    schema_: Optional[str] = Field(default=None, alias="$schema")
    orders: FLOW_RULE_MODELS["orders"] = Field(default_factory=FLOW_RULE_MODELS["orders"])  # type: ignore[valid-type]
    products: FLOW_RULE_MODELS["products"] = Field(default_factory=FLOW_RULE_MODELS["products"])  # type: ignore[valid-type]
    customers: FLOW_RULE_MODELS["customers"] = Field(default_factory=FLOW_RULE_MODELS["customers"])  # type: ignore[valid-type]
    stock: FLOW_RULE_MODELS["stock"] = Field(default_factory=FLOW_RULE_MODELS["stock"])  # type: ignore[valid-type]
    orders_reverse: FLOW_RULE_MODELS["orders_reverse"] = Field(default_factory=FLOW_RULE_MODELS["orders_reverse"])  # type: ignore[valid-type]

    def rules(self, flow: str) -> dict[str, Any]:
        """The rules of ``flow`` as ``{target: FieldRule | each-rule}`` (unset ones left out)."""
        return rules_dict(getattr(self, flow))


def rules_dict(model: BaseModel) -> dict[str, Any]:
    """``{dotted target: rule}`` of a generated rules model, without unset/null entries."""
    result: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        if name == "comment":
            continue
        value = getattr(model, name)
        if value is not None:
            result[info.alias or name] = value
    return result


def is_each_rule(rule: Any) -> bool:
    """Whether ``rule`` is a list rule (``{"each": ..., "fields": ...}``)."""
    return hasattr(rule, "each") and hasattr(rule, "fields")


def validate_rules(flow: str, rules: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    """Validate raw rules (JSON-like) for ``flow``; returns ``{target: rule}``.

    Raises ``pydantic.ValidationError`` (and ``KeyError`` for an unknown flow)."""
    if flow not in FLOW_RULE_MODELS:
        raise KeyError(f"unknown flow {flow!r} (known: {', '.join(FLOW_RULE_MODELS)})")
    model = FLOW_RULE_MODELS[flow]
    if isinstance(rules, model):
        return rules_dict(rules)
    if rules and all(isinstance(rule, (FieldRule, BaseModel)) for rule in rules.values()):
        rules = {target: rule.model_dump(by_alias=True, exclude_unset=True) for target, rule in rules.items()}
    return rules_dict(model.model_validate(dict(rules)))


def merge_raw_mappings(default: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a tenant's raw ``mappings`` over the default's, per flow and per field.

    A tenant field replaces the default field entirely; ``null`` removes it; list rules
    (``lines``) merge their ``fields`` per field too, taking ``each``/``on`` from the
    tenant when given. Non-dict values are left for validation to reject.
    """
    merged: dict[str, Any] = {key: value for key, value in default.items() if key not in ("$comment", "$schema")}
    for flow, rules in override.items():
        base = merged.get(flow)
        if not isinstance(rules, dict) or not isinstance(base, dict):
            merged[flow] = rules
            continue
        flow_rules = dict(base)
        for target, rule in rules.items():
            previous = flow_rules.get(target)
            if rule is None:
                flow_rules.pop(target, None)
            elif isinstance(rule, dict) and isinstance(previous, dict) and "fields" in previous and "fields" in rule:
                nested = dict(previous)
                nested.update({k: v for k, v in rule.items() if k != "fields"})
                if isinstance(rule["fields"], dict):
                    fields = dict(previous.get("fields") or {})
                    for name, sub_rule in rule["fields"].items():
                        if sub_rule is None:
                            fields.pop(name, None)
                        else:
                            fields[name] = sub_rule
                    nested["fields"] = fields
                else:
                    nested["fields"] = rule["fields"]
                flow_rules[target] = nested
            else:
                flow_rules[target] = rule
        merged[flow] = flow_rules
    return merged


def prevalidated_mappings(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``raw`` (a valid default mapping, as JSON) with every rule replaced by the model
    it validates to, for :func:`merge_raw_mappings` to merge tenants over.

    A tenant's ``mappings`` are merged over the default and validated whole; pydantic
    takes a rule that is already a validated (frozen) model as it is, so only the rules a
    tenant writes itself are validated per tenant — the default's hundred-odd rules are
    validated once, here, not once per tenant. List rules stay dicts (``each``, ``on``
    and their ``fields`` with validated rules inside), so a tenant can still override
    single fields of them, and the merged result validates to the same models, with the
    same errors at the same JSON paths, as the raw default would.

    Raises ``pydantic.ValidationError`` when ``raw`` is no valid mapping set."""
    validated = MappingSet.model_validate(dict(raw))
    result: dict[str, Any] = {}
    for flow, rules in raw.items():
        flow_model = getattr(validated, flow, None) if flow in MappingSet.model_fields else None
        if not isinstance(rules, dict) or not isinstance(flow_model, BaseModel):
            result[flow] = rules
            continue
        result[flow] = _validated_rules(flow_model, rules)
    return result


def _validated_rules(model: BaseModel, rules: Mapping[str, Any]) -> dict[str, Any]:
    by_alias = {info.alias or name: name for name, info in type(model).model_fields.items()}
    out: dict[str, Any] = {}
    for target, raw_rule in rules.items():
        name = by_alias.get(target)
        rule = getattr(model, name) if name and name != "comment" else None
        if rule is None:  # "$comment", a null rule: as written
            out[target] = raw_rule
        elif is_each_rule(rule) and isinstance(raw_rule, dict) and isinstance(raw_rule.get("fields"), dict):
            nested = dict(raw_rule)
            nested["fields"] = _validated_rules(rule.fields, raw_rule["fields"])
            out[target] = nested
        else:
            out[target] = rule
    return out
