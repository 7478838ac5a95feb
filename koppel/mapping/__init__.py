"""The datamapper: enriched Lightspeed records → canonical record dicts.

Rules come from the shipped default mapping (``default_mapping.json``; an installation may
put its own ``_default.json`` next to the tenant files) overridden per field by the tenant file; transforms
are registered, argument-checked functions (:mod:`koppel.mapping.transforms`), never
evaluated code.

The names below are imported when first used (``from koppel.mapping import Mapper``
works as always): the tenant loader needs only :mod:`koppel.mapping.rules` at DAG-parse
time, not the mapper and the domain records it pulls in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

# name → first use imports its module (scientific-python's lazy_loader, SPEC 1)
__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "mapper": ["FieldSplit", "Mapper", "MappingError", "MappingResult", "split_create_update"],
    "rules": ["FieldRule", "MappingSet", "merge_raw_mappings", "validate_rules"],
    "transforms": ["TRANSFORMS", "TransformError"],
})

if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors
    from koppel.mapping.mapper import FieldSplit, Mapper, MappingError, MappingResult, split_create_update
    from koppel.mapping.rules import FieldRule, MappingSet, merge_raw_mappings, validate_rules
    from koppel.mapping.transforms import TRANSFORMS, TransformError
