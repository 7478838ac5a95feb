"""Turn stored records into Lightspeed JSON: envelopes, references and quirks.

Records are kept as plain dicts in Lightspeed's own field names with ``Decimal`` money,
aware ``datetime`` timestamps and :class:`Ref` objects for related resources. Keys that
start with ``_`` are internal and never leave the sandbox. :func:`render` does the
conversion: money to JSON numbers, timestamps to ``2019-08-21T17:15:00+00:00``,
references to ``{"resource": {"id", "url", "link"}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to another resource; ``url`` is relative (``customers/123``).

    ``id`` is ``False`` for collection references such as ``products/5/images``."""

    url: str
    id: int | bool = False


@dataclass(frozen=True, slots=True)
class Cdn:
    """A file on the shop's CDN, served by the sandbox under ``/_cdn/{path}``."""

    path: str


@dataclass(frozen=True, slots=True)
class RenderContext:
    """Where links point: ``{base}/{lang}/{url}.json`` (query kept after ``.json``)."""

    base: str
    lang: str

    def link(self, url: str) -> str:
        path, _, query = url.partition("?")
        return f"{self.base}/{self.lang}/{path}.json" + (f"?{query}" if query else "")

    def cdn(self, path: str) -> str:
        return f"{self.base}/_cdn/{path}"


def timestamp(moment: datetime) -> str:
    """``2019-08-21T17:15:00+00:00`` (UTC, seconds precision)."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def reference(ref: Ref, ctx: RenderContext, embedded: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": ref.id, "url": ref.url, "link": ctx.link(ref.url)}
    if embedded is not None:
        body["embedded"] = embedded
    return {"resource": body}


def render(value: Any, ctx: RenderContext) -> Any:
    """Recursively convert a stored value into its JSON form."""
    if isinstance(value, dict):
        return {k: render(v, ctx) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Ref):
        return reference(value, ctx)
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, Cdn):
        return ctx.cdn(value.path)
    if isinstance(value, (list, tuple)):
        return [render(v, ctx) for v in value]
    return value


def pick_fields(record: dict[str, Any], fields: str | None) -> dict[str, Any]:
    """Lightspeed's ``?fields=id,number`` narrows every object to those keys."""
    if not fields:
        return record
    wanted = {f.strip() for f in fields.split(",") if f.strip()}
    return {k: v for k, v in record.items() if k in wanted}


def render_many(records: Iterable[dict[str, Any]], ctx: RenderContext,
                fields: str | None = None,
                extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                ) -> list[dict[str, Any]]:
    out = []
    for record in records:
        item = render(record, ctx)
        if extra is not None:
            item.update(extra(record))
        out.append(pick_fields(item, fields))
    return out


def error_body(code: int, method: str, request: str, message: str,
               errors: dict[str, Any] | None = None) -> dict[str, Any]:
    """Lightspeed's error envelope."""
    body: dict[str, Any] = {"code": code, "method": method, "request": request,
                            "message": message}
    if errors:
        body["errors"] = errors
    return {"error": body}
