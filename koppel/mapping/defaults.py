"""Where the shipped default mapping lives.

The default mapping is shipped once, in the package (``koppel/mapping/default_mapping.json``),
so it is there however koppel is installed. An installation that wants other defaults
for all its tenants puts its own ``_default.json`` in the tenant directory; the tenant
loader prefers that one.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_MAPPING_FILE = "_default.json"
PACKAGED_DEFAULT_MAPPING = Path(__file__).with_name("default_mapping.json")
