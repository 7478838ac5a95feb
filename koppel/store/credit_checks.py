"""The refunds flow's memory of the credits it read per order (table ``credit_check`` in
``schema.py``): per order the ``updatedAt`` at which its credits were read and their ids.

Lightspeed lists no credits across orders: each order's credits cost one call
(``orders/{id}/credit.json``). A credit moves its order's ``updatedAt``, so an order
listed again at the ``updatedAt`` koppel read its credits at has no new credit; when every
credit koppel knows of it is booked (a ``refund`` cross-reference), reading its credits
again cannot change anything and the call is saved (:meth:`CreditChecks.settled`).
Ids and timestamps only, no personal data.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

from sqlalchemy import Engine, delete, insert, select, update

from koppel.store.schema import credit_check, ensure_schema, xref


def _utc(value: Any) -> dt.datetime | None:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


class CreditChecks:
    """One tenant's credit reads. Loaded once per instance (one query, plus one per 500
    remembered credits for their cross-references), written per order read."""

    #: the cross-reference source type of a booked refund (koppel.flows.refunds)
    REFUND_SOURCE_TYPE = "refund"

    def __init__(self, engine: Engine, tenant: str) -> None:
        self.engine = engine
        self.tenant = tenant
        ensure_schema(engine)
        self._known: dict[str, tuple[dt.datetime | None, list[str]]] | None = None
        self._booked: set[str] | None = None
        self._checked: set[str] = set()

    def _load(self) -> dict[str, tuple[dt.datetime | None, list[str]]]:
        if self._known is None:
            stmt = select(credit_check).where(credit_check.c.tenant == self.tenant)
            with self.engine.connect() as conn:
                self._known = {r.order_id: (_utc(r.order_updated_at),
                                            [str(i) for i in (r.credit_ids or [])])
                               for r in conn.execute(stmt)}
        return self._known

    def _are_booked(self, ids: list[str]) -> bool:
        """Every id in ``ids`` has a refund cross-reference. The first call reads the
        cross-references of every remembered credit at once; later ones only the ids not
        read before."""
        if self._booked is None:
            self._booked, self._checked = set(), set()
            self._read_xrefs(sorted({c for _, cs in self._load().values() for c in cs}))
        self._read_xrefs(sorted(set(ids) - self._checked))
        return all(i in self._booked for i in ids)

    def _read_xrefs(self, ids: list[str]) -> None:
        if not ids:
            return
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                self._booked.update(r[0] for r in conn.execute(select(xref.c.source_id).where(
                    xref.c.tenant == self.tenant,
                    xref.c.source_type == self.REFUND_SOURCE_TYPE,
                    xref.c.source_id.in_(ids[start:start + 500]))))
        self._checked.update(ids)

    def settled(self, order_id: Any, updated_at: Any) -> bool:
        """True when the order's credits were read at this very ``updatedAt`` and every
        one of them is booked: nothing a new read could add."""
        known = self._load().get(str(order_id))
        stamp = _utc(updated_at)
        if known is None or stamp is None or known[0] != stamp:
            return False
        return self._are_booked(known[1])

    def remember(self, order_id: Any, updated_at: Any, credit_ids: Iterable[Any]) -> None:
        """The order's credits as just read (at the order's ``updatedAt``)."""
        stamp = _utc(updated_at)
        if stamp is None:
            return  # an order without a readable updatedAt is always read
        order_id, ids = str(order_id), sorted({str(i) for i in credit_ids})
        now = dt.datetime.now(dt.timezone.utc)
        with self.engine.begin() as conn:
            done = conn.execute(update(credit_check).where(
                credit_check.c.tenant == self.tenant, credit_check.c.order_id == order_id)
                .values(order_updated_at=stamp, credit_ids=ids, checked_at=now)).rowcount
            if not done:
                conn.execute(insert(credit_check).values(
                    tenant=self.tenant, order_id=order_id, order_updated_at=stamp,
                    credit_ids=ids, checked_at=now))
        if self._known is not None:
            self._known[order_id] = (stamp, ids)
        if self._booked is not None:  # new ids: their cross-references are read when asked
            self._checked.difference_update(ids)

    def forget(self, order_ids: Iterable[Any]) -> None:
        ids = sorted({str(i) for i in order_ids})
        with self.engine.begin() as conn:
            for start in range(0, len(ids), 500):
                conn.execute(delete(credit_check).where(
                    credit_check.c.tenant == self.tenant,
                    credit_check.c.order_id.in_(ids[start:start + 500])))
        if self._known is not None:
            for i in ids:
                self._known.pop(i, None)
