"""``QuickBooksWriter``: every write koppel makes to QuickBooks, with one outcome per record.

The flows hand the writer write operations (:class:`WriteOp`) keyed by their own record
key — create, update, void or delete of an entity, with its payload and, for a sales
document, the shop's figures it must carry — and get back one :class:`WriteOutcome` per
key. The writer owns what every write needs, once:

batching     creates, updates and deletes go in batch requests of at most 30 operations
             (the hook's ``BATCH_SIZE``); look-ups never share a batch with writes. A
             void goes as its own request (QuickBooks voids a sales receipt through an
             update with ``include=void``, which a batch item cannot carry).
request ids  deterministic: ``request_id(tenant, scope, operation, *keys)`` over the
             operations of the call (each key ``":"``-joined, the target's SyncToken
             appended for updates, voids and deletes), and the hook derives each batch
             request's id from it and the request's content. A retried task sends the
             same requests with the same ids and QuickBooks answers them from the first:
             nothing is booked twice. A write against a newer version is a new request.
versions     an update, void or delete of ``target_id`` without a ``SyncToken`` in its
             payload is sent against the target's current version, read in one query per
             entity; a target QuickBooks no longer has is ``gone``.
dry run      no request at all (no version read either): each key gets ``dry_run`` with
             "dry run: would <summary>".
duplicates   a create whose ``DocNumber`` QuickBooks already has (fault 6140, or 6210 as
             Intuit's 2017 list names it) is looked up by its number: the document is
             ``adopted`` only when the operation's ``matches`` finds it is the same one,
             else ``refused`` with a reason naming both; not found, the fault stands.
names        a create whose name QuickBooks already has (fault 6240 "Duplicate Name
             Exists": ``DisplayName`` of a Customer, Vendor or Employee, ``Name`` of an
             Item, PaymentMethod, …) is looked up by that name (quoted as the hook quotes
             every query literal; the names of one call in one request): an object is
             ``adopted`` only when the operation's ``matches`` accepts it, else
             ``refused`` naming both; no ``matches``, or nothing by that name (another
             entity type, an inactive one), the fault stands (``failed``, field ``name``).
faults       each item's fault is that key's ``failed`` outcome (fault code, message,
             element); auth, throttling past every retry and a QuickBooks that is down
             are not one record's fault and raise.
attachments  ``attach`` uploads a file as an Attachable linked to one entity or several
             (``AttachableRef`` is an array), ``attach_files`` several files in as few
             requests as allowed (``POST /upload``, a multipart request a batch cannot
             carry; numbered part pairs, one answer per file) under the caller's
             deterministic request id; dry run, faults and auth as for every write.
verification every answer of an operation with ``expected`` figures is compared with them
             (:func:`koppel.domain.verify.verify`): any difference makes the outcome a
             ``conflict`` that carries both figures — never a silent note.

Model: the Singer SDK's ``BatchSink`` (one class owns batching, ``process_batch`` and
what becomes of each record of a batch). The writer sits next to the hook and knows
nothing of flows: the flows turn outcomes into activity (``result.end``/``fail``).
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import httpx

from koppel.domain.verify import Booked, Expected, Verification, booked_figures, verify
from koppel.hooks.errors import (
    AuthError,
    DuplicateDocNumber,
    DuplicateName,
    QBOError,
    QBOFault,
    TransientError,
    fault_from_payload,
)
from koppel.hooks.quickbooks import BATCH_SIZE, MAX_RESULTS, BatchOp, quote

log = logging.getLogger(__name__)

OPERATIONS = ("create", "update", "void", "delete")
#: fault codes of a document number QuickBooks already has: 6140 (python-quickbooks and
#: the sandbox), 6210 (Intuit's 2017 error list); either way the number is looked up
DUPLICATE_NUMBER_CODES = frozenset({6140, 6210})
#: fault code of a name QuickBooks already has ("Duplicate Name Exists Error")
DUPLICATE_NAME_CODE = 6240
#: the field that holds an entity's unique name (``Name`` for the others)
NAME_FIELDS = {"Customer": "DisplayName", "Vendor": "DisplayName", "Employee": "DisplayName"}
#: name look-ups: values per ``IN (…)`` list and characters per statement (as the hook's
#: ``query_in``)
NAME_CHUNK = 30
NAME_SQL_CHARS = 3000
#: entities QuickBooks voids through ``operation=update&include=void`` (the others
#: through ``operation=void``)
VOID_BY_UPDATE = frozenset({"SalesReceipt"})

# outcome statuses
WRITTEN = "written"      # QuickBooks wrote it (and its figures are the expected ones)
CONFLICT = "conflict"    # QuickBooks wrote it, but its figures differ from the expected
ADOPTED = "adopted"      # the DocNumber (or name) existed: that object is this write's
REFUSED = "refused"      # the DocNumber (or name) is another object's: not adopted
DRY_RUN = "dry_run"      # a dry run: nothing sent
FAILED = "failed"        # QuickBooks refused the item (``fault``), or a look-up found no
                         # document for a duplicate number
GONE = "gone"            # the target of an update/void/delete is not in QuickBooks


@dataclass(frozen=True)
class WriteOp:
    """One write. ``key`` is the caller's record key (one outcome per key).

    ``request_key``: what makes this write unique (source id, content version, …; the
    ``key`` when empty) — part of the request id, so keep it stable across retries.
    ``target_id``: the entity updated, voided or deleted. ``expected``: the figures the
    answer must carry. ``doc_number`` + ``matches``: duplicate-number recovery of a create
    (``matches(row)`` returns why the existing ``row`` is *not* this write's document, or
    ``None`` when it is). ``name`` + ``matches``: duplicate-name recovery of a create (fault
    6240; the same ``matches``). ``bid``: the batch item id (default: the call's
    ``bid_prefix`` + the op's index) — part of the request id, keep it stable.
    ``summary``: what a dry run would do ("create SalesReceipt 1001 (total 12.10)";
    default ``"<operation> <entity> [<target_id>]"``)."""

    key: str
    operation: str
    entity: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    request_key: tuple[str, ...] = ()
    target_id: str | None = None
    expected: Expected | None = None
    doc_number: str | None = None
    matches: Callable[[dict[str, Any]], str | None] | None = None
    summary: str | None = None
    name: str | None = None
    bid: str | None = None

    @property
    def target(self) -> str | None:
        """The id of the entity an update, void or delete writes to."""
        found = self.target_id or self.payload.get("Id")
        return None if found is None else str(found)

    def describe(self) -> str:
        if self.summary:
            return self.summary
        return " ".join(p for p in (self.operation, self.entity, self.target) if p)

    def preview(self) -> dict[str, Any]:
        """What this write would send (a dry run's preview of the record)."""
        return {"target_type": self.entity, "operation": self.operation,
                "payload": self.payload}


@dataclass
class WriteOutcome:
    """What became of one :class:`WriteOp`."""

    key: str
    status: str
    operation: str
    entity: str
    value: dict[str, Any] | None = None  # the entity QuickBooks returned, or the adopted one
    fault: QBOError | None = None
    reason: str | None = None
    field: str | None = None             # the field a ``failed`` outcome is about
    verification: Verification | None = None

    @property
    def written(self) -> bool:
        """QuickBooks holds the write now (``written`` or ``conflict``)."""
        return self.status in (WRITTEN, CONFLICT)

    @property
    def target_id(self) -> str | None:
        return str(self.value["Id"]) if self.value and self.value.get("Id") is not None else None

    @property
    def code(self) -> int | None:
        return getattr(self.fault, "code", None)

    @property
    def element(self) -> str:
        return getattr(self.fault, "element", "") or ""

    @property
    def booked(self) -> Booked | None:
        """The figures of the returned document (``None`` without one)."""
        if self.verification is not None:
            return self.verification.booked
        return booked_figures(self.value) if self.value else None

    @property
    def problems(self) -> tuple[str, ...]:
        return self.verification.problems if self.verification is not None else ()


class QuickBooksWriter:
    """Writes of one tenant through one :class:`~koppel.hooks.quickbooks.QuickBooksHook`
    (see the module's docstring). ``batch_size`` is the hook's limit of 30."""

    def __init__(self, hook: Any, *, tenant: str, dry_run: bool = False,
                 batch_size: int = BATCH_SIZE) -> None:
        if not 1 <= batch_size <= BATCH_SIZE:
            raise ValueError(f"a batch holds 1 to {BATCH_SIZE} operations")
        self.hook = hook
        self.tenant = tenant
        self.dry_run = dry_run
        self.batch_size = batch_size

    # -- the one entry point ------------------------------------------------------------
    def write(self, ops: Sequence[WriteOp], *, scope: str | None = None,
              bid_prefix: str = "w", id_parts: Sequence[Any] | None = None
              ) -> dict[str, WriteOutcome]:
        """Send ``ops`` and return ``key → outcome`` in the order of ``ops``. Creates,
        updates and deletes may share a call (and its batches); voids go alone.

        ``scope`` names the writes in the request id (default: their entity, which must
        then be one); ``bid_prefix`` + the index of each sent operation is its batch item
        id unless the op names its ``bid`` — both are part of the request id, keep them.
        ``id_parts``: the request id's basis after the tenant, for callers whose ids were
        always ``request_id(tenant, *id_parts)`` (default: ``scope, operation, *keys``)."""
        if not ops:
            return {}
        keys = [op.key for op in ops]
        if len(set(keys)) != len(keys):
            raise ValueError(f"tenant {self.tenant}: write keys must be unique")
        kinds = {op.operation for op in ops}
        if not kinds <= set(OPERATIONS) or ("void" in kinds and len(kinds) > 1):
            raise ValueError(f"tenant {self.tenant}: one operation of {OPERATIONS} per "
                             f"write (creates, updates and deletes may mix), got "
                             f"{sorted(kinds)}")
        bids = [op.bid for op in ops if op.bid]
        if len(set(bids)) != len(bids):
            raise ValueError(f"tenant {self.tenant}: batch item ids must be unique")
        operation = "+".join(sorted(kinds))
        if any(op.operation != "create" and op.target is None for op in ops):
            raise ValueError(f"tenant {self.tenant}: a {operation} needs its target_id")
        if self.dry_run:
            return {op.key: self._dry_run(op) for op in ops}
        outcomes: dict[str, WriteOutcome] = {}
        bodies = self._bodies(ops, outcomes)
        sendable = [op for op in ops if op.key in bodies]
        if operation == "void":
            for op in sendable:
                outcomes[op.key] = self._single(op, bodies[op.key], scope)
        elif sendable:
            outcomes.update(self._batched(sendable, bodies, scope, operation, bid_prefix,
                                          id_parts))
        return {key: outcomes[key] for key in keys}

    # -- attachments --------------------------------------------------------------------
    def attach(self, key: str, *, entity: str, entity_id: str | Sequence[str], file_name: str,
               content: bytes, id_parts: Sequence[Any]) -> WriteOutcome:
        """Upload ``content`` once as an Attachable linked to ``entity`` ``entity_id`` — one
        id, or several (``AttachableRef`` is an array: one file linked to every item of a
        product, Intuit "Attach images and notes",
        https://developer.intuit.com/app/developer/qbo/docs/workflows/attach-images-and-notes):
        one ``POST /upload`` (the file as a base64 part next to its Attachable) under
        ``request_id(tenant, *id_parts)`` — keep them stable, a retry is then answered
        from the first upload. The outcome's ``value`` is the Attachable."""
        ids = [entity_id] if isinstance(entity_id, str) else list(dict.fromkeys(entity_id))
        if not ids:
            raise ValueError(f"tenant {self.tenant}: an attachment needs an entity to link to")
        op = WriteOp(key=key, operation="create", entity="Attachable",
                     summary=f"attach {file_name} to {entity} {', '.join(ids)}")
        if self.dry_run:
            return self._dry_run(op)
        rid = self.hook.request_id(self.tenant, *id_parts)
        try:
            value = _upload(self.hook, entity=entity, entity_id=ids,
                            file_name=file_name, content=content, rid=rid)
        except (AuthError, TransientError):
            raise  # not this record's fault: the task fails, Airflow retries
        except QBOError as exc:
            return self._failed(op, exc)
        return WriteOutcome(key, WRITTEN, op.operation, op.entity, value=value)

    def attach_files(self, files: Sequence["Attachment"], *, id_parts: Sequence[Any]
                     ) -> dict[str, WriteOutcome]:
        """Upload several files, each as an Attachable linked to its entities, in as few
        ``POST /upload`` requests as :data:`FILES_PER_UPLOAD` and :data:`UPLOAD_BYTES`
        allow: the upload takes numbered part pairs (``file_metadata_0n`` +
        ``file_content_0n``) and answers ``AttachableResponse``, an array with one
        ``Attachable`` or ``Fault`` per file — so one file's fault is that key's
        ``failed`` outcome, the others are written. Each request's id is
        ``request_id(tenant, *id_parts, *"<key>:<entity ids>" of its files)``: a retried
        task sends the same requests and is answered from the first, while the same
        bytes for other entities are a new request. ``key → outcome`` in the order of
        ``files``."""
        keys = [f.key for f in files]
        if len(set(keys)) != len(keys):
            raise ValueError(f"tenant {self.tenant}: attachment keys must be unique")
        outcomes: dict[str, WriteOutcome] = {}
        for group in _upload_groups(files):
            ops = {f.key: WriteOp(key=f.key, operation="create", entity="Attachable",
                                  summary=f"attach {f.file_name} to {f.entity} "
                                          f"{', '.join(f.entity_ids)}") for f in group}
            if self.dry_run:
                outcomes.update({k: self._dry_run(op) for k, op in ops.items()})
                continue
            rid = self.hook.request_id(self.tenant, *id_parts, *(
                f"{f.key}:{'+'.join(f.entity_ids)}" for f in group))
            try:
                answers = _upload_files(self.hook, group, rid=rid)
            except (AuthError, TransientError):
                raise  # not this record's fault: the task fails, Airflow retries
            except QBOError as exc:  # the request as a whole was refused
                outcomes.update({k: self._failed(op, exc) for k, op in ops.items()})
                continue
            for f, answer in zip(group, answers):
                if isinstance(answer, (AuthError, TransientError)):
                    raise answer
                if isinstance(answer, QBOError):
                    outcomes[f.key] = self._failed(ops[f.key], answer)
                else:
                    outcomes[f.key] = WriteOutcome(f.key, WRITTEN, "create", "Attachable",
                                                   value=answer)
        return {key: outcomes[key] for key in keys}

    # -- dry run ------------------------------------------------------------------------
    def _dry_run(self, op: WriteOp) -> WriteOutcome:
        reason = f"dry run: would {op.describe()}"
        log.info("DRY RUN (nothing written): tenant %s, record %s: would %s", self.tenant,
                 op.key, op.describe())
        return WriteOutcome(op.key, DRY_RUN, op.operation, op.entity, reason=reason)

    # -- bodies, with the current version of each target --------------------------------
    def _bodies(self, ops: Sequence[WriteOp],
                outcomes: dict[str, WriteOutcome]) -> dict[str, dict[str, Any]]:
        """The body of each op; updates, voids and deletes without a SyncToken get their
        target's current one (one look-up per entity); a target not found is ``gone``."""
        need: dict[str, list[str]] = {}
        for op in ops:
            if op.operation != "create" and "SyncToken" not in op.payload:
                need.setdefault(op.entity, []).append(op.target)
        current: dict[tuple[str, str], dict[str, Any]] = {}
        for entity, ids in need.items():
            for row in self.hook.query_in(entity, "Id", ids):
                current[(entity, str(row["Id"]))] = row
        bodies: dict[str, dict[str, Any]] = {}
        for op in ops:
            if op.operation == "create" or "SyncToken" in op.payload:
                body = dict(op.payload)
            else:
                row = current.get((op.entity, op.target))
                if row is None:
                    outcomes[op.key] = WriteOutcome(
                        op.key, GONE, op.operation, op.entity,
                        reason=f"{op.entity} {op.target} is not in QuickBooks")
                    continue
                body = {**op.payload, "Id": row["Id"], "SyncToken": row["SyncToken"]}
            if op.operation == "void":
                body = {"Id": body.get("Id", op.target), "SyncToken": body["SyncToken"],
                        "sparse": True}
            elif op.operation == "delete":
                body = {"Id": body.get("Id", op.target), "SyncToken": body["SyncToken"]}
            bodies[op.key] = body
        return bodies

    @staticmethod
    def _request_parts(op: WriteOp, body: Mapping[str, Any]) -> tuple[str, ...]:
        parts = tuple(str(p) for p in (op.request_key or (op.key,)))
        if op.operation != "create":
            parts += (str(body["SyncToken"]),)
        return parts

    # -- batches ------------------------------------------------------------------------
    def _batched(self, ops: Sequence[WriteOp], bodies: Mapping[str, dict[str, Any]],
                 scope: str | None, operation: str, bid_prefix: str,
                 id_parts: Sequence[Any] | None = None) -> dict[str, WriteOutcome]:
        entities = {op.entity for op in ops}
        if scope is None and id_parts is None and len(entities) > 1:
            raise ValueError(f"tenant {self.tenant}: writes of {sorted(entities)} need a scope")
        hook = self.hook
        if id_parts is not None:
            base = hook.request_id(self.tenant, *id_parts)
        else:
            base = hook.request_id(
                self.tenant, scope or next(iter(entities)), operation,
                *[":".join(self._request_parts(op, bodies[op.key])) for op in ops])
        sent = [BatchOp(bid=op.bid or f"{bid_prefix}{i}", operation=op.operation,
                        entity=op.entity, payload=bodies[op.key]) for i, op in enumerate(ops)]
        answers: dict[str, Any] = {}
        for start in range(0, len(sent), self.batch_size):
            # one request per batch; its request id is derived from ``base`` and its content
            answers.update(hook.batch(sent[start:start + self.batch_size], request_id=base))
        outcomes: dict[str, WriteOutcome] = {}
        duplicates: list[tuple[WriteOp, QBOFault]] = []
        names: list[tuple[WriteOp, QBOFault]] = []
        for op, item in zip(ops, sent):
            answer = answers.get(item.bid)
            if answer is None:
                fault = QBOFault("no answer for this batch item", method="POST", path="batch",
                                 record_id=item.bid)
                outcomes[op.key] = self._failed(op, fault)
            elif answer.ok:
                outcomes[op.key] = self._answered(op, answer.value or {})
            elif op.operation == "create" and op.doc_number and _duplicate_number(answer.fault):
                duplicates.append((op, answer.fault))
            elif op.operation == "create" and op.name and _duplicate_name(answer.fault):
                names.append((op, answer.fault))
            else:
                outcomes[op.key] = self._failed(op, answer.fault)
        outcomes.update(self._recover_duplicates(duplicates))
        outcomes.update(self._recover_names(names))
        return outcomes

    # -- single requests (voids) --------------------------------------------------------
    def _single(self, op: WriteOp, body: dict[str, Any], scope: str | None) -> WriteOutcome:
        params = {"operation": "update", "include": "void"} if op.entity in VOID_BY_UPDATE \
            else {"operation": op.operation}
        hook = self.hook
        rid = hook.request_id(self.tenant, scope or op.entity, op.operation,
                              *self._request_parts(op, body))
        try:
            data = hook.api("POST", op.entity.lower(), body=body, params=params,
                            request_id=rid, record_id=op.key)
        except (AuthError, TransientError):
            raise  # not this record's fault: the task fails, Airflow retries
        except QBOError as exc:
            return self._failed(op, exc)
        value = data.get(op.entity) if isinstance(data, dict) else None
        return self._answered(op, value if isinstance(value, dict) else {"Id": body["Id"]})

    # -- answers ------------------------------------------------------------------------
    def _answered(self, op: WriteOp, value: dict[str, Any]) -> WriteOutcome:
        if op.expected is None:
            return WriteOutcome(op.key, WRITTEN, op.operation, op.entity, value=value)
        verdict = verify(op.expected, value)
        status = WRITTEN if verdict.ok else CONFLICT
        reason = None if verdict.ok else (
            f"{op.entity} {value.get('Id')} differs from the shop: " + "; ".join(verdict.problems))
        return WriteOutcome(op.key, status, op.operation, op.entity, value=value, reason=reason,
                            verification=verdict)

    @staticmethod
    def _failed(op: WriteOp, fault: QBOError, field: str | None = None) -> WriteOutcome:
        """A fault as the key's error: its text names the code, message and element."""
        return WriteOutcome(op.key, FAILED, op.operation, op.entity, fault=fault,
                            reason=str(fault), field=field)

    def _recover_duplicates(self, duplicates: list[tuple[WriteOp, QBOFault]]
                            ) -> dict[str, WriteOutcome]:
        """Creates refused for a DocNumber QuickBooks has: the documents with those
        numbers, one look-up per entity (never inside a write batch)."""
        out: dict[str, WriteOutcome] = {}
        by_entity: dict[str, list[tuple[WriteOp, QBOFault]]] = {}
        for op, fault in duplicates:
            by_entity.setdefault(op.entity, []).append((op, fault))
        for entity, group in by_entity.items():
            rows = self.hook.query_in(entity, "DocNumber", [op.doc_number for op, _ in group])
            existing: dict[str, dict[str, Any]] = {}
            for row in rows:
                existing.setdefault(str(row.get("DocNumber")), row)
            for op, fault in group:
                row = existing.get(str(op.doc_number))
                if row is None:  # the fault stands: the number is not the problem we can fix
                    out[op.key] = self._failed(op, fault, field="number")
                    continue
                why_not = op.matches(row) if op.matches is not None else None
                if why_not:
                    out[op.key] = WriteOutcome(
                        op.key, REFUSED, op.operation, entity, value=row, fault=fault,
                        field="number",
                        reason=(f"{entity} {row['Id']} in QuickBooks has DocNumber "
                                f"{op.doc_number} but {why_not}; not adopted"))
                    continue
                out[op.key] = WriteOutcome(op.key, ADOPTED, op.operation, entity, value=row,
                                           reason="already in QuickBooks (DocNumber exists)")
        return out


    def _recover_names(self, clashes: list[tuple[WriteOp, QBOFault]]
                       ) -> dict[str, WriteOutcome]:
        """Creates refused for a name QuickBooks has (6240): the objects with those names,
        by the hook's look-up policy (plain queries, a batch of queries above 12; never
        inside a write batch).
        Only an object ``matches`` accepts is adopted."""
        out: dict[str, WriteOutcome] = {}
        recoverable = []
        for op, fault in clashes:
            if op.matches is None:  # nobody to say the object is this write's: it stands
                out[op.key] = self._failed(op, fault, field="name")
            else:
                recoverable.append((op, fault))
        if not recoverable:
            return out
        wanted: dict[str, list[str]] = {}
        for op, _fault in recoverable:
            wanted.setdefault(op.entity, []).append(str(op.name))
        statements = [(entity, sql) for entity, values in wanted.items()
                      for sql in _name_queries(entity, values)]
        # several names at once: the hook's look-up policy (QuickBooksHook.query_many)
        answers = self.hook.query_many({f"n{i}": sql for i, (_entity, sql) in enumerate(statements)})
        found: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for i, (entity, _sql) in enumerate(statements):
            rows = answers.get(f"n{i}") or []
            for row in rows:
                name = str(row.get(NAME_FIELDS.get(entity, "Name")) or "")
                found.setdefault((entity, name.casefold()), []).append(row)
        for op, fault in recoverable:
            field_name = NAME_FIELDS.get(op.entity, "Name")
            rows = sorted(found.get((op.entity, str(op.name).casefold()), []),
                          key=lambda r: str(r.get("Id")))
            if not rows:  # held by another entity type or an inactive object: it stands
                out[op.key] = self._failed(op, fault, field="name")
                continue
            refusals = []
            for row in rows:
                why_not = op.matches(row)
                if not why_not:
                    out[op.key] = WriteOutcome(
                        op.key, ADOPTED, op.operation, op.entity, value=row,
                        reason=f"already in QuickBooks ({field_name} exists)")
                    break
                refusals.append((row, why_not))
            else:
                row, why_not = refusals[0]
                out[op.key] = WriteOutcome(
                    op.key, REFUSED, op.operation, op.entity, value=row, fault=fault,
                    field="name",
                    reason=(f"{op.entity} {row.get('Id')} in QuickBooks has {field_name} "
                            f"{op.name!r} but {why_not}; not adopted"))
        return out


#: content types of attachments by file extension
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
                 "gif": "image/gif", "webp": "image/webp"}
#: files per ``POST /upload`` request (numbered part pairs ``_01`` … ``_10``; how many
#: QuickBooks takes at most is not documented: assumed, docs/sandbox-fidelity.md)
FILES_PER_UPLOAD = 10
#: raw bytes per upload request (before base64): well under the 100 MB QuickBooks
#: accepts per request (assumed, docs/sandbox-fidelity.md); a larger file goes alone
UPLOAD_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Attachment:
    """One file to upload: its caller's ``key``, name and bytes, and the entities its
    Attachable is linked to (``AttachableRef`` is an array: one file on many items)."""

    key: str
    file_name: str
    content: bytes
    entity: str
    entity_ids: tuple[str, ...]


def _upload_groups(files: Sequence[Attachment]) -> list[list[Attachment]]:
    """``files`` in request-sized groups, in order."""
    groups: list[list[Attachment]] = []
    size = 0
    for f in files:
        if not groups or len(groups[-1]) >= FILES_PER_UPLOAD \
                or (groups[-1] and size + len(f.content) > UPLOAD_BYTES):
            groups.append([])
            size = 0
        groups[-1].append(f)
        size += len(f.content)
    return groups


def _upload(hook: Any, *, entity: str, entity_id: str | Sequence[str], file_name: str,
            content: bytes, rid: str) -> dict[str, Any]:
    """``POST /upload`` of one file: the file (base64 part) and its Attachable linked to
    the entity — to each of several (one ``AttachableRef`` per id)."""
    ids = (entity_id,) if isinstance(entity_id, str) else tuple(entity_id)
    (answer,) = _upload_files(hook, [Attachment("", file_name, content, entity, ids)], rid=rid)
    if isinstance(answer, QBOError):
        raise answer
    return answer


def _upload_files(hook: Any, files: Sequence[Attachment], *, rid: str
                  ) -> list[dict[str, Any] | QBOError]:
    """One ``POST /upload`` of ``files`` (part pairs ``file_metadata_0n`` +
    ``file_content_0n``, base64): per file, its Attachable or the fault QuickBooks
    answered for it. A fault of the whole request raises."""
    boundary = "koppel-" + uuid.uuid5(uuid.NAMESPACE_URL, rid).hex
    first = files[0].entity_ids
    record_id = first[0] if len(files) == 1 and len(first) == 1 else \
        f"{first[0]}+{sum(len(f.entity_ids) for f in files) - 1}"
    parts = []
    for n, f in enumerate(files, start=1):
        content_type = CONTENT_TYPES.get(f.file_name.rsplit(".", 1)[-1],
                                         "application/octet-stream")
        metadata = {"AttachableRef": [{"EntityRef": {"type": f.entity, "value": i}}
                                      for i in f.entity_ids],
                    "FileName": f.file_name, "ContentType": content_type}
        parts.append(
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file_metadata_{n:02d}"; '
            'filename="attachment.json"\r\n'
            "Content-Type: application/json\r\n\r\n"
            f"{json.dumps(metadata)}\r\n"
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file_content_{n:02d}"; '
            f'filename="{f.file_name}"\r\n'
            f"Content-Type: {content_type}\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
            f"{base64.b64encode(f.content).decode()}\r\n")
    body = ("".join(parts) + f"--{boundary}--\r\n").encode()
    url = f"{hook.company_url}/upload"
    response = hook.send("POST", url, params={"requestid": rid}, content=body,
                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                         record_id=record_id)
    try:
        data = json.loads(response.text) if response.content else {}
    except ValueError:
        raise QBOFault("unreadable upload answer", method="POST", path="upload",
                       status=response.status_code, record_id=record_id) from None
    fault = data.get("Fault") or data.get("fault") if isinstance(data, dict) else None
    if fault:
        raise fault_from_payload(fault, method="POST", path=httpx.URL(url).path,
                                 status=response.status_code, record_id=record_id)
    answers = [a for a in data.get("AttachableResponse", []) if isinstance(a, dict)
               and ("Attachable" in a or "Fault" in a)]
    # An answered Attachable is matched to its file by what it says — FileName and the
    # entities it is linked to, else those entities alone when no other file of the
    # request has them — and only what is left by position, which Intuit does not
    # document: an answer in another order never books one file's Attachable under
    # another's key. Faults (they name no file) go to the files left, in order.
    def refs_of(a: dict[str, Any]) -> frozenset[str]:
        return frozenset(str((r.get("EntityRef") or {}).get("value"))
                         for r in a.get("AttachableRef") or [] if isinstance(r, dict))

    attachables = [a["Attachable"] for a in answers
                   if isinstance(a.get("Attachable"), dict)]
    faults = [a for a in answers if not isinstance(a.get("Attachable"), dict)]
    chosen: dict[int, dict[str, Any]] = {}
    for rule in ("name and entities", "entities"):
        for index, f in enumerate(files):
            if index in chosen:
                continue
            ids = frozenset(f.entity_ids)
            if rule == "name and entities":
                fits = [a for a in attachables
                        if a.get("FileName") == f.file_name and refs_of(a) == ids]
            elif sum(1 for g in files if frozenset(g.entity_ids) == ids) == 1:
                fits = [a for a in attachables if refs_of(a) == ids]
            else:
                fits = []
            if fits:
                chosen[index] = fits[0]
                attachables.remove(fits[0])
    out: list[dict[str, Any] | QBOError] = []
    for index, f in enumerate(files):
        rid_of = f.entity_ids[0] if f.entity_ids else record_id
        if index in chosen:
            out.append(chosen[index])
        elif faults:
            out.append(fault_from_payload(faults.pop(0).get("Fault") or {}, method="POST",
                                          path="upload", record_id=rid_of))
        elif attachables:
            out.append(attachables.pop(0))
        else:
            out.append(QBOFault(f"upload answered no Attachable for {f.file_name}",
                                method="POST", path="upload", record_id=rid_of))
    return out

def _name_queries(entity: str, names: Sequence[str]) -> list[str]:
    """``SELECT * FROM <entity> WHERE <name field> IN (…)`` over ``names``: literals quoted
    as the hook quotes them, chunked like its ``query_in``."""
    field_name = NAME_FIELDS.get(entity, "Name")
    unique = list(dict.fromkeys(n for n in names if n))
    statements, chunk, size = [], [], 0
    for name in unique:
        literal = quote(name)
        if chunk and (len(chunk) >= NAME_CHUNK or size + len(literal) + 2 > NAME_SQL_CHARS):
            statements.append(chunk)
            chunk, size = [], 0
        chunk.append(literal)
        size += len(literal) + 2
    if chunk:
        statements.append(chunk)
    return [f"SELECT * FROM {entity} WHERE {field_name} IN ({', '.join(c)}) "
            f"MAXRESULTS {MAX_RESULTS}" for c in statements]


def _duplicate_name(fault: Any) -> bool:
    return isinstance(fault, DuplicateName) or getattr(fault, "code", None) == DUPLICATE_NAME_CODE


def _duplicate_number(fault: Any) -> bool:
    return isinstance(fault, DuplicateDocNumber) \
        or getattr(fault, "code", None) in DUPLICATE_NUMBER_CODES
