"""The datamapper: enriched Lightspeed records → canonical record dicts.

Rules come from the shipped default mapping (``default_mapping.json``; an installation may
put its own ``_default.json`` next to the tenant files) overridden per field by the tenant file; transforms
are registered, argument-checked functions (:mod:`koppel.mapping.transforms`), never
evaluated code.
"""

from koppel.mapping.mapper import FieldSplit, Mapper, MappingError, MappingResult, split_create_update
from koppel.mapping.rules import FieldRule, MappingSet, merge_raw_mappings, validate_rules
from koppel.mapping.transforms import TRANSFORMS, TransformError

__all__ = [
    "FieldRule",
    "FieldSplit",
    "Mapper",
    "MappingError",
    "MappingResult",
    "MappingSet",
    "TRANSFORMS",
    "TransformError",
    "merge_raw_mappings",
    "split_create_update",
    "validate_rules",
]
