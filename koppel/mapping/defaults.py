"""Where the shipped default mapping lives.

The package copy (``koppel/mapping/default_mapping.json``) is the one that is always
there, also when koppel is installed as a wheel; ``include/mappings/_default.json`` is an
identical copy shipped next to the tenant files so users see what they override (a test
keeps the two equal). The tenant loader prefers the copy in the tenant directory.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_MAPPING_FILE = "_default.json"
PACKAGED_DEFAULT_MAPPING = Path(__file__).with_name("default_mapping.json")
