"""The Jinja2 environment every HTML page of koppel's Airflow UI plugin is rendered with.

The templates live in ``koppel/web/templates/`` (shipped as package data: the
``*.html`` pattern of ``[tool.setuptools.package-data]``) and are loaded through the
package, so an installed koppel finds them wherever it is installed. Autoescaping is on
for every ``.html`` template: each value a page shows (tenant names, reasons, SKUs,
search queries, run ids, URLs) is escaped by Jinja2 itself, in text and in attribute
values, and no template marks data as safe. ``StrictUndefined`` turns a name a template
uses but the view did not pass into an error instead of an empty cell.

Jinja2 ships with Airflow; this module is only imported by the code that renders a page
(the API server), never by the plugin module every Airflow component loads."""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

TEMPLATE_PACKAGE = "koppel.web"
TEMPLATE_DIR = "templates"


def _query(params: dict[str, Any]) -> str:
    """A URL query string (``a=1&b=x+y``) of the non-empty ``params``; the template's
    autoescaping then turns its ``&`` into ``&amp;`` inside an attribute."""
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The shared environment (templates are compiled once per process)."""
    env = Environment(
        loader=PackageLoader(TEMPLATE_PACKAGE, TEMPLATE_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["query"] = _query
    return env


def render(template: str, **context: Any) -> str:
    """``template`` (a file name in ``koppel/web/templates/``) rendered with ``context``."""
    return environment().get_template(template).render(**context)
