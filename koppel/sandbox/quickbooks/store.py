"""Thread-safe in-memory company data, one :class:`Realm` per QBO company."""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from koppel.sandbox.quickbooks.limits import RealmLimits

IDEMPOTENCY_CACHE = 5000

REGIONS = {
    "NL": {"country": "NL", "currency": "EUR", "currency_name": "Euro", "vat": True},
    "US": {"country": "US", "currency": "USD", "currency_name": "United States Dollar",
           "vat": False},
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def parse_time(value: str) -> datetime | None:
    """An ISO date/time as QBO and python-quickbooks write it; naive means UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@dataclass
class Tombstone:
    """A deleted object, kept for CDC."""

    entity: str
    id: str
    deleted_at: datetime

    def as_cdc(self) -> dict[str, Any]:
        return {"Id": self.id, "status": "Deleted", "domain": "QBO",
                "MetaData": {"LastUpdatedTime": stamp(self.deleted_at)}}


@dataclass
class Realm:
    """One company: its objects, tombstones, attachments, idempotency cache, throttles."""

    id: str
    region: str
    name: str
    lock: threading.RLock = field(default_factory=threading.RLock)
    objects: dict[str, dict[str, dict]] = field(default_factory=dict)
    tombstones: list[Tombstone] = field(default_factory=list)
    attachments: dict[str, bytes] = field(default_factory=dict)
    idempotency: OrderedDict = field(default_factory=OrderedDict)
    limits: RealmLimits = field(default_factory=RealmLimits)
    _ids: dict[str, itertools.count] = field(default_factory=dict)
    _doc_numbers: dict[str, itertools.count] = field(default_factory=dict)
    default_sales_tax_code: str = ""
    created: datetime = field(default_factory=utcnow)
    #: ``Preferences.CurrencyPrefs.MultiCurrencyEnabled``: off by default, turned on only
    #: through the control plane (QBO: in the UI, never through the API), never off again
    multicurrency: bool = False
    #: rates set through ``POST /exchangerate`` or the control plane:
    #: ``{source code: {"yyyy-mm-dd": {"Rate", "TargetCurrencyCode", "SyncToken",
    #: "LastUpdatedTime"}}}`` (see :mod:`koppel.sandbox.quickbooks.currencies`)
    exchange_rates: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Snapshots from before a field existed restore with its default."""
        state.setdefault("multicurrency", False)
        state.setdefault("exchange_rates", {})
        self.__dict__.update(state)

    @property
    def settings(self) -> dict[str, Any]:
        return REGIONS[self.region]

    @property
    def vat(self) -> bool:
        return bool(self.settings["vat"])

    @property
    def home_currency(self) -> str:
        """``Preferences.CurrencyPrefs.HomeCurrency``: EUR for NL realms, USD for US."""
        return str(self.settings["currency"])

    # -- objects ------------------------------------------------------------------------
    def table(self, entity: str) -> dict[str, dict]:
        return self.objects.setdefault(entity, {})

    def get(self, entity: str, obj_id: Any) -> dict | None:
        return self.table(entity).get(str(obj_id))

    def all(self, entity: str) -> list[dict]:
        return sorted(self.table(entity).values(), key=_id_key)

    def next_id(self, entity: str) -> str:
        counter = self._ids.setdefault(entity, itertools.count(1))
        while True:
            candidate = str(next(counter))
            if candidate not in self.table(entity):
                return candidate

    def next_doc_number(self, entity: str) -> str:
        return str(next(self._doc_numbers.setdefault(entity, itertools.count(1001))))

    def insert(self, entity: str, obj: dict, obj_id: str | None = None) -> dict:
        """Store a new object: Id, SyncToken 0, MetaData."""
        now = stamp(utcnow())
        obj["Id"] = obj_id or self.next_id(entity)
        obj["SyncToken"] = "0"
        obj["domain"] = "QBO"
        obj["sparse"] = False
        obj["MetaData"] = {"CreateTime": now, "LastUpdatedTime": now}
        self.table(entity)[obj["Id"]] = obj
        return obj

    def replace(self, entity: str, obj: dict) -> dict:
        """Store a changed object: SyncToken + 1, LastUpdatedTime now."""
        old = self.table(entity)[obj["Id"]]
        obj["SyncToken"] = str(int(old.get("SyncToken", "0")) + 1)
        obj["domain"] = "QBO"
        obj["sparse"] = False
        obj["MetaData"] = {"CreateTime": old["MetaData"]["CreateTime"],
                           "LastUpdatedTime": stamp(utcnow())}
        self.table(entity)[obj["Id"]] = obj
        return obj

    def remove(self, entity: str, obj_id: str) -> dict:
        obj = self.table(entity).pop(str(obj_id))
        self.tombstones.append(Tombstone(entity, str(obj_id), utcnow()))
        if entity == "Attachable":
            self.attachments.pop(str(obj_id), None)
        return obj

    # -- requestid ----------------------------------------------------------------------
    def remembered(self, request_id: str) -> tuple[int, Any] | None:
        return self.idempotency.get(request_id)

    def remember(self, request_id: str, status: int, body: Any) -> None:
        self.idempotency[request_id] = (status, deepcopy(body))
        while len(self.idempotency) > IDEMPOTENCY_CACHE:
            self.idempotency.popitem(last=False)


def _id_key(obj: dict) -> tuple[int, str]:
    obj_id = str(obj.get("Id", ""))
    return (int(obj_id), "") if obj_id.isdigit() else (1 << 62, obj_id)


class Store:
    """All realms of one sandbox."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.realms: dict[str, Realm] = {}
        self.default_realm_id = ""
        self._realm_numbers = itertools.count(1)

    def new_realm_id(self) -> str:
        with self._lock:
            return str(9130357000000000 + next(self._realm_numbers) * 1111)

    def add(self, realm: Realm) -> Realm:
        with self._lock:
            self.realms[realm.id] = realm
            if not self.default_realm_id:
                self.default_realm_id = realm.id
            return realm

    def get(self, realm_id: str) -> Realm | None:
        return self.realms.get(str(realm_id))
