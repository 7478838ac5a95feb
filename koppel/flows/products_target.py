"""The QuickBooks side of the products flow: look-ups in few calls, batched writes with
request ids, category items and image attachments.

* Look-ups (accounts, preferences, items by Id, SKU and Name, chunked ``IN`` lists) go
  by the hook's look-up policy (``query_many``): plain queries, a batch of queries above
  12 — whichever costs less under the published limits.
* Writes go through the :class:`~koppel.hooks.qbo_writer.QuickBooksWriter`: batch
  requests of at most 30 operations, each carrying a ``requestid`` derived from the run
  and its content, so a retried request (timeout, task retry) is answered from
  QuickBooks' replay cache instead of being applied twice; across runs, SKU/name
  look-ups and QuickBooks' unique item names prevent duplicates (a name clash, 6240, is
  looked up by the writer and adopted only when it is the same item or category).
* Category items are keyed by their Lightspeed category ids (a renamed Lightspeed
  category renames its QuickBooks category), created level by level (a parent first).
* Images are Attachables, each file uploaded (the writer's ``attach``) **once**, by the
  hash of its bytes, linked to every item that shows it (``AttachableRef`` is an array):
  a product's picture is one upload for all its variants' items, and an item added
  later is linked to the existing Attachable by a batched sparse update — the bytes are
  never sent again (:func:`sync_images`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from koppel.domain.hashing import content_hash
from koppel.domain.items import CATEGORY_FOLD_SEPARATOR, QBO_MAX_CATEGORY_DEPTH, fold_category_path
from koppel.domain.names import stable_tag
from koppel.domain.qbo_payloads import category_payload
from koppel.hooks.qbo_writer import (
    ADOPTED,
    GONE,
    REFUSED,
    Attachment,
    QuickBooksWriter,
    WriteOp,
)
from koppel.hooks.quickbooks import MAX_RESULTS, quote

log = logging.getLogger(__name__)

#: Values per ``IN (…)`` list in one look-up query.
IN_CHUNK = 80
MAX_SOURCE_ID = 64


# --------------------------------------------------------------------------- batches


def query_batch(hook: Any, queries: Mapping[str, str], *,
                writes_to_follow: int = 0) -> dict[str, list[dict[str, Any]]]:
    """Run named look-ups; ``name -> rows`` (the hook's look-up policy,
    :meth:`koppel.hooks.quickbooks.QuickBooksHook.query_many`; ``writes_to_follow``: the
    writes the caller sends next, which may leave the batch budget to them)."""
    if not queries:
        return {}
    return hook.query_many(queries, writes_to_follow=writes_to_follow)


def in_queries(prefix: str, entity: str, field_name: str, values: Iterable[Any],
               extra_where: str | None = None) -> dict[str, str]:
    """Named ``SELECT … WHERE field IN (…)`` queries over ``values`` in chunks."""
    unique = sorted({str(v) for v in values if v not in (None, "")})
    queries = {}
    for index in range(0, len(unique), IN_CHUNK):
        chunk = unique[index:index + IN_CHUNK]
        where = f"{field_name} IN ({', '.join(quote(v) for v in chunk)})"
        if extra_where:
            where += f" AND {extra_where}"
        queries[f"{prefix}{index // IN_CHUNK}"] = (
            f"SELECT * FROM {entity} WHERE {where} MAXRESULTS {MAX_RESULTS}")
    return queries


# --------------------------------------------------------------------------- lookups


@dataclass
class TargetState:
    """What QuickBooks holds that a chunk needs: items by id, SKU and full name."""

    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_sku: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fqns: dict[str, str] = field(default_factory=dict)  # casefolded FQN -> item id
    accounts: dict[str, str] = field(default_factory=dict)  # account name -> id
    home_currency: str | None = None
    queried_names: set[str] = field(default_factory=set)

    def add_item(self, item: Mapping[str, Any]) -> None:
        item_id = str(item["Id"])
        self.by_id[item_id] = dict(item)
        sku = str(item.get("Sku") or "").strip().casefold()
        if sku and item.get("Type") != "Category":
            bucket = self.by_sku.setdefault(sku, [])
            if all(str(i["Id"]) != item_id for i in bucket):
                bucket.append(dict(item))
        fqn = str(item.get("FullyQualifiedName") or item.get("Name") or "")
        if fqn:
            self.fqns[fqn.casefold()] = item_id
        self.queried_names.add(str(item.get("Name") or "").casefold())


def load_target_state(hook: Any, *, item_ids: Iterable[str], skus: Iterable[str],
                      names: Iterable[str], account_names: Iterable[str],
                      writes_to_follow: int = 0) -> TargetState:
    """The chunk's look-ups, by the hook's look-up policy (``query_many``), before up to
    ``writes_to_follow`` item writes."""
    queries: dict[str, str] = {"prefs": "SELECT * FROM Preferences"}
    queries.update(in_queries("acct", "Account", "Name", account_names))
    queries.update(in_queries("id", "Item", "Id", item_ids))
    queries.update(in_queries("sku", "Item", "Sku", skus))
    name_list = sorted({n for n in names if n})
    queries.update(in_queries("name", "Item", "Name", name_list))
    rows = query_batch(hook, queries, writes_to_follow=writes_to_follow)
    state = TargetState()
    for name, found in rows.items():
        if name == "prefs":
            for prefs in found:
                home = ((prefs.get("CurrencyPrefs") or {}).get("HomeCurrency") or {})
                state.home_currency = str(home.get("value") or "").upper() or None
        elif name.startswith("acct"):
            for account in found:
                state.accounts[str(account.get("Name"))] = str(account["Id"])
        else:
            for item in found:
                state.add_item(item)
    state.queried_names.update(n.casefold() for n in name_list)
    return state


class NameIndex:
    """Whether an item name is free under a category path (QBO: unique full names).

    Knows the names queried up front; a name never seen is queried on demand (rare: only
    when both a name and its SKU-suffixed variant are taken)."""

    def __init__(self, hook: Any, state: TargetState) -> None:
        self.hook = hook
        self.state = state
        self.claimed: set[str] = set()

    def taken_under(self, prefix: str, own_id: str | None):
        def taken(name: str) -> bool:
            self._ensure(name)
            fqn = f"{prefix}:{name}" if prefix else name
            key = fqn.casefold()
            if key in self.claimed:
                return True
            holder = self.state.fqns.get(key)
            return holder is not None and holder != own_id
        return taken

    def claim(self, prefix: str, name: str) -> None:
        self.claimed.add((f"{prefix}:{name}" if prefix else name).casefold())

    def _ensure(self, name: str) -> None:
        if self.hook is None or name.casefold() in self.state.queried_names:
            return
        for item in self.hook.query_in("Item", "Name", [name]):
            self.state.add_item(item)
        self.state.queried_names.add(name.casefold())


# --------------------------------------------------------------------------- categories


@dataclass(frozen=True)
class CategoryNode:
    """One QBO category level: its key (xref source id), name and parent key."""

    key: str
    name: str
    parent: str | None
    level: int


@dataclass(frozen=True)
class CategoryPlan:
    """The QBO category path of one item."""

    nodes: tuple[CategoryNode, ...]
    folded: bool
    original_depth: int

    @property
    def leaf(self) -> CategoryNode | None:
        return self.nodes[-1] if self.nodes else None

    @property
    def full_name(self) -> str:
        return ":".join(n.name for n in self.nodes)


def _key(parts: Sequence[str]) -> str:
    text = ">".join(parts)
    if len(text) <= MAX_SOURCE_ID:
        return text
    return "h:" + hashlib.sha256(text.encode()).hexdigest()[:40]


def plan_categories(path: Sequence[str], ids: Sequence[int] | None) -> CategoryPlan:
    """Fit ``path`` (names, root first) to QBO's four levels. With the Lightspeed ids of
    the same path, nodes are keyed by id (a renamed Lightspeed category renames its QBO
    category); else by the names above them. A folded last level is keyed by all the
    levels it joins."""
    folded = fold_category_path(path)
    if not folded.names:
        return CategoryPlan((), False, 0)
    by_id = ids is not None and len(ids) == folded.original_depth == len(path)
    nodes: list[CategoryNode] = []
    parent: str | None = None
    last = len(folded.names) - 1
    for level, name in enumerate(folded.names):
        end = len(path) if (level == last and folded.folded) else level + 1
        if by_id:
            key = _key([str(i) for i in ids[level:end]])
        else:
            key = "n:" + stable_tag("\x1f".join(path[:end]), 24)
        nodes.append(CategoryNode(key=key, name=name, parent=parent, level=level))
        parent = key
    return CategoryPlan(tuple(nodes), folded.folded, folded.original_depth)


@dataclass
class CategoryOutcome:
    """Category ids by key and what was done to them (for the activity log)."""

    ids: dict[str, str] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def _category_hash(node: CategoryNode) -> str:
    return content_hash({"name": node.name, "parent": node.parent})


def sync_categories(hook: Any, store: Any, tenant: str, run_key: str,
                    plans: Iterable[CategoryPlan], *, dry_run: bool) -> CategoryOutcome:
    """Create or rename the QBO category items ``plans`` need, level by level."""
    nodes: dict[str, CategoryNode] = {}
    folded_from: dict[str, int] = {}
    for plan in plans:
        for node in plan.nodes:
            nodes.setdefault(node.key, node)
        if plan.folded and plan.leaf is not None:
            folded_from[plan.leaf.key] = plan.original_depth
    outcome = CategoryOutcome()
    if not nodes:
        return outcome
    xrefs = store.xrefs(tenant, "category", nodes.keys(), target_type="Item")
    known = {key: x for key, x in xrefs.items() if x.state == "active"}
    outcome.ids.update({key: x.target_id for key, x in known.items()})
    changed = {key for key, node in nodes.items()
               if key in known and known[key].content_hash != _category_hash(node)}
    missing = {key for key in nodes if key not in known}
    if dry_run:
        for key in sorted(missing | changed):
            node = nodes[key]
            outcome.entries.append(_entry(node, "skipped", None, folded_from.get(key),
                                          reason=f"dry run: would {'create' if key in missing else 'update'} "
                                          f"category '{node.name}'"))
        return outcome
    existing = _lookup_categories(hook, [nodes[k] for k in missing | changed],
                                  [known[k].target_id for k in changed])
    for level in range(QBO_MAX_CATEGORY_DEPTH):
        todo = sorted(k for k in missing | changed if nodes[k].level == level)
        if todo:
            _write_level(hook, store, tenant, run_key, [nodes[k] for k in todo], known,
                         existing, outcome, folded_from)
    return outcome


def _lookup_categories(hook: Any, nodes: list[CategoryNode], ids: list[str]) -> dict[str, Any]:
    queries = in_queries("n", "Item", "Name", [n.name for n in nodes], "Type = 'Category'")
    queries.update(in_queries("i", "Item", "Id", ids))
    found: dict[str, Any] = {"by_id": {}, "by_name": {}}
    for rows in query_batch(hook, queries).values():
        for row in rows:
            found["by_id"][str(row["Id"])] = row
            if row.get("Type") == "Category":
                found["by_name"].setdefault(str(row.get("Name", "")).casefold(), []).append(row)
    return found


def _parent_matches(row: Mapping[str, Any], parent_id: str | None) -> bool:
    have = (row.get("ParentRef") or {}).get("value")
    return (str(have) if have else None) == parent_id


def _write_level(hook, store, tenant, run_key, nodes, known, existing, outcome, folded_from):
    ops: list[WriteOp] = []
    by_key: dict[str, CategoryNode] = {}
    for node in nodes:
        if node.parent is not None and node.parent not in outcome.ids:
            outcome.errors[node.key] = outcome.errors.get(node.parent, "parent category missing")
            continue
        parent_id = outcome.ids.get(node.parent) if node.parent else None
        xref = known.get(node.key)
        current = existing["by_id"].get(xref.target_id) if xref else None
        if current is not None:
            changes: dict[str, Any] = {}
            if str(current.get("Name")) != node.name:
                changes["Name"] = node.name
            if not _parent_matches(current, parent_id):
                changes.update({"SubItem": bool(parent_id), "ParentRef": {"value": parent_id}}
                               if parent_id else {"SubItem": False})
            if not changes:
                outcome.ids[node.key] = str(current["Id"])
                store.save_xref(tenant, "category", node.key, "Item", str(current["Id"]),
                                _category_hash(node))
                continue
            body = {"Id": str(current["Id"]), "SyncToken": str(current.get("SyncToken", "0")),
                    "sparse": True, **changes}
            by_key[node.key] = node
            ops.append(WriteOp(key=node.key, operation="update", entity="Item", payload=body,
                               target_id=str(current["Id"]), bid=f"u{len(ops)}"))
            continue
        adopt = next((row for row in existing["by_name"].get(node.name.casefold(), [])
                      if _parent_matches(row, parent_id)), None)
        if adopt is not None:
            outcome.ids[node.key] = str(adopt["Id"])
            store.save_xref(tenant, "category", node.key, "Item", str(adopt["Id"]),
                            _category_hash(node))
            outcome.entries.append(_entry(node, "skipped", str(adopt["Id"]), folded_from.get(node.key),
                                          reason="category already in QuickBooks: linked"))
            continue
        by_key[node.key] = node
        ops.append(WriteOp(key=node.key, operation="create", entity="Item",
                           payload=category_payload(node.name, parent_id), bid=f"c{len(ops)}",
                           name=node.name, matches=_same_category(parent_id)))
    if not ops:
        return
    results = QuickBooksWriter(hook, tenant=tenant).write(ops, id_parts=(run_key, "categories"))
    for op in ops:
        node = by_key[op.key]
        answer = results[op.key]
        adopted = answer.status == ADOPTED
        if not (answer.written or adopted):
            message = answer.fault.message if answer.fault is not None else answer.reason
            if answer.status == REFUSED:
                message = f"{message}: {answer.reason}"
            outcome.errors[node.key] = f"category '{node.name}': {message}"
            continue
        item = answer.value or {}
        outcome.ids[node.key] = str(item["Id"])
        existing["by_id"][str(item["Id"])] = item
        store.save_xref(tenant, "category", node.key, "Item", str(item["Id"]), _category_hash(node))
        action = "skipped" if adopted else ("created" if op.operation == "create" else "updated")
        outcome.entries.append(_entry(node, action, str(item["Id"]), folded_from.get(node.key),
                                      reason="created meanwhile by a parallel task: linked"
                                      if adopted else None))


def _same_category(parent_id: str | None):
    """``matches`` of a category create that clashed on its name (6240; e.g. a parallel
    chunk made it first): a category with that name under the same parent is this one."""
    def matches(row: Mapping[str, Any]) -> str | None:
        if row.get("Type") != "Category":
            return f"it is a {row.get('Type') or 'non-category'} item, not a category"
        if not _parent_matches(row, parent_id):
            have = (row.get("ParentRef") or {}).get("value")
            return (f"it sits under {'category ' + str(have) if have else 'the top level'}, "
                    f"not {'category ' + parent_id if parent_id else 'the top level'}")
        return None
    return matches


def _entry(node: CategoryNode, action: str, target_id: str | None, folded_depth: int | None,
           reason: str | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {"name": node.name, "level": node.level + 1}
    if folded_depth:
        details["folded_from_depth"] = folded_depth
        details["folding"] = (f"Lightspeed path of {folded_depth} levels folded into QuickBooks' "
                              f"{QBO_MAX_CATEGORY_DEPTH}: deepest levels joined with "
                              f"'{CATEGORY_FOLD_SEPARATOR.strip()}'")
    return {"source_id": node.key, "action": action, "target_id": target_id,
            "reason": reason, "details": details}


# --------------------------------------------------------------------------- images

#: xref ``source_type`` of one uploaded file, keyed by the SHA-256 of its bytes (64 hex
#: characters, the column's width): the Attachable that holds those bytes
IMAGE_FILE = "image_file"


def image_key(variant_id: str, url: str) -> str:
    """The xref source id of one image on one variant's item."""
    return f"{variant_id}:{stable_tag(url.split('?')[0], 16)}"


def _file_name(url: str, digest: str) -> str:
    """The Attachable's file name: the image's own name (the URL's last part) and the
    start of its byte hash — the same for every item that shows the file, whichever
    variant happens to upload it, and distinct for distinct files."""
    tail = url.split("?")[0].rsplit("/", 1)[-1]
    stem, dot, extension = tail.rpartition(".")
    if not dot:
        stem, extension = tail, "jpg"
    extension = extension.lower()
    if not extension.isalnum() or len(extension) > 5:
        extension = "jpg"
    base = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in stem).strip("-")
    return f"{base[:60] or 'image'}-{digest[:8]}.{extension}"


@dataclass
class ImageResult:
    uploaded: int = 0
    kept: int = 0
    error: str | None = None


@dataclass(frozen=True)
class ItemImages:
    """The images one variant's item should carry (its product's, in order)."""

    variant_id: str
    item_id: str
    urls: Sequence[str]


@dataclass
class _Link:
    """One image an item still lacks."""

    want: ItemImages
    index: int
    url: str
    key: str


def sync_images(ls_hook: Any, qb_hook: Any, store: Any, tenant: str,
                wants: Sequence[ItemImages], *, cache: dict[str, bytes | Exception] | None = None
                ) -> dict[str, ImageResult]:
    """Attach the images of a chunk's items that are not attached yet; ``variant id →``
    what became of its images.

    * Each (variant, URL) attached once is kept in the cross-reference (``source_type``
      ``image``) and costs nothing after: no download, no call.
    * A URL still missing somewhere is downloaded once; its bytes' SHA-256 names the
      file (``source_type`` ``image_file``). Bytes never uploaded go up **once**, as one
      Attachable whose ``AttachableRef`` lists every item that needs them (all the
      variants of a product in the chunk; Intuit "Attach images and notes":
      ``AttachableRef`` is an array, https://developer.intuit.com/app/developer/qbo/docs/
      workflows/attach-images-and-notes) — one ``POST /upload`` per file, not per item.
    * Bytes uploaded before (another chunk, an earlier run, another product with the same
      picture) are never sent again: the items are added to that Attachable's
      ``AttachableRef`` by sparse updates (Attachable entity reference: update with
      ``Id`` + ``SyncToken``), read in one query and written in batches of 30.
    * The new files of the chunk go up together, several per ``POST /upload`` (the
      writer's ``attach_files``: numbered part pairs, one answer per file).
    * The whole step holds the tenant's image lock, so parallel chunks never upload the
      same bytes twice.

    Request ids: an upload request's is ``request_id(tenant, "images", *"<byte hash>:<item
    ids>" of its files)`` (a retried task is answered from the first upload); the link
    updates carry the writer's ids (the Attachable's ``SyncToken`` in each)."""
    results = {w.variant_id: ImageResult() for w in wants}
    cache = {} if cache is None else cache
    keys = [image_key(w.variant_id, url) for w in wants for url in w.urls]
    if not keys:
        return results
    held = store.xrefs(tenant, "image", keys, target_type="Attachable")
    missing: dict[str, list[_Link]] = {}
    for want in wants:
        for index, url in enumerate(want.urls):
            key = image_key(want.variant_id, url)
            xref = held.get(key)
            if xref is not None and xref.target_id and xref.state == "active":
                results[want.variant_id].kept += 1
                continue
            missing.setdefault(url.split("?")[0], []).append(_Link(want, index, url, key))
    if not missing:
        return results
    files: dict[str, dict[str, Any]] = {}  # byte hash → {"content", "links"}
    for base, links in missing.items():
        url = links[0].url
        if url not in cache:
            try:
                cache[url] = ls_hook.download_image(url, record_id=links[0].want.variant_id)
            except Exception as exc:  # one bad image never stops the others
                if getattr(exc, "retryable", False) is False and \
                        type(exc).__name__ != "LightspeedNotFound":
                    raise
                cache[url] = exc
        content = cache[url]
        if isinstance(content, Exception):
            why = getattr(content, "message", type(content).__name__)
            for link in links:
                results[link.want.variant_id].error = \
                    f"image {link.index + 1}: download failed ({why})"
            continue
        digest = hashlib.sha256(content).hexdigest()
        files.setdefault(digest, {"content": content, "links": []})["links"].extend(links)
    if not files:
        return results
    with store.lock(f"images:{tenant}:{getattr(qb_hook, 'realm_id', '') or ''}"):
        known = store.xrefs(tenant, IMAGE_FILE, files, target_type="Attachable")
        uploaded = {d: x.target_id for d, x in known.items()
                    if x.state == "active" and x.target_id}
        linked, failed, carried = _link_uploaded(qb_hook, tenant, files, uploaded, results)
        new_files = []
        for digest, entry in files.items():
            if digest in failed or digest in linked:
                continue
            new_files.append(Attachment(
                key=digest, entity="Item",
                entity_ids=tuple(dict.fromkeys(link.want.item_id for link in entry["links"])),
                file_name=_file_name(entry["links"][0].url, digest), content=entry["content"]))
        outcomes = QuickBooksWriter(qb_hook, tenant=tenant).attach_files(
            new_files, id_parts=("images",)) if new_files else {}
        for digest, outcome in outcomes.items():
            if not outcome.written:
                why = outcome.fault.message if outcome.fault is not None else str(outcome.reason)
                for link in files[digest]["links"]:
                    results[link.want.variant_id].error = f"image {link.index + 1}: {why}"
                continue
            linked[digest] = str(outcome.target_id)
            store.save_xref(tenant, IMAGE_FILE, digest, "Attachable", linked[digest], digest)
        for digest, attachable_id in linked.items():
            for link in files[digest]["links"]:
                store.save_xref(tenant, "image", link.key, "Attachable", attachable_id, digest)
                if digest in carried:  # the item shows these bytes already (moved URL)
                    results[link.want.variant_id].kept += 1
                else:
                    results[link.want.variant_id].uploaded += 1
    return results


def _link_uploaded(qb_hook: Any, tenant: str, files: Mapping[str, dict[str, Any]],
                   uploaded: Mapping[str, str], results: dict[str, ImageResult]
                   ) -> tuple[dict[str, str], set[str], set[str]]:
    """Add the items of ``files`` already uploaded (``uploaded``: byte hash → Attachable
    id) to their Attachable's ``AttachableRef``: one query for the Attachables, sparse
    updates in batches. ``byte hash → Attachable id`` of the files now linked, the files
    whose update failed (their items carry the error) and those whose Attachable carried
    every item already (nothing sent); a file whose Attachable is gone (deleted in
    QuickBooks) is in none, to be uploaded again."""
    failed: set[str] = set()
    carried: set[str] = set()
    if not uploaded:
        return {}, failed, carried
    rows = {str(r["Id"]): r for r in qb_hook.query_in("Attachable", "Id",
                                                      sorted(set(uploaded.values())))}
    linked: dict[str, str] = {}
    ops: list[WriteOp] = []
    by_key: dict[str, str] = {}
    for digest, attachable_id in sorted(uploaded.items()):
        row = rows.get(attachable_id)
        if row is None or digest not in files:
            continue
        refs = [dict(r) for r in row.get("AttachableRef") or []]
        have = {(str((r.get("EntityRef") or {}).get("type")),
                 str((r.get("EntityRef") or {}).get("value"))) for r in refs}
        new = [i for i in dict.fromkeys(link.want.item_id for link in files[digest]["links"])
               if ("Item", str(i)) not in have]
        if not new:
            linked[digest] = attachable_id  # the items carry it already: nothing to send
            carried.add(digest)
            continue
        refs += [{"EntityRef": {"type": "Item", "value": str(i)}} for i in new]
        ops.append(WriteOp(key=digest, operation="update", entity="Attachable",
                           payload={"Id": attachable_id, "SyncToken": str(row["SyncToken"]),
                                    "sparse": True, "AttachableRef": refs},
                           target_id=attachable_id, bid=f"a{len(ops)}"))
        by_key[digest] = attachable_id
    if ops:
        answers = QuickBooksWriter(qb_hook, tenant=tenant).write(ops, scope="image-links")
        for digest, answer in answers.items():
            if answer.written:
                linked[digest] = by_key[digest]
                continue
            why = answer.fault.message if answer.fault is not None else str(answer.reason)
            if answer.status == GONE:
                continue  # deleted meanwhile: uploaded again
            for link in files[digest]["links"]:
                results[link.want.variant_id].error = f"image {link.index + 1}: {why}"
            failed.add(digest)  # neither linked nor uploaded again (the next run retries)
    return linked, failed, carried
