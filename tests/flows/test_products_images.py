"""The products flow's image step (:func:`koppel.flows.products_target.sync_images`, issue
20) against a recording QuickBooks fake and a real state store: each file — by the hash
of its bytes — uploaded once, linked to every item that shows it, several files to one
upload request; a later chunk or run links its items to the file already uploaded (a
query and a batched sparse update, no bytes sent); an unchanged item costs nothing."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from koppel.flows.products_target import IMAGE_FILE, ItemImages, image_key, sync_images
from koppel.hooks.errors import LightspeedNotFound
from koppel.hooks.quickbooks import BatchResult, request_id
from koppel.sandbox.quickbooks.app import parse_multipart
from koppel.store.state import StateStore

TENANT = "acme"


class FakeQuickBooks:
    """``POST /upload`` (multipart, one answer per file), ``query_in`` of Attachables by
    Id and batched Attachable updates (SyncToken checked), each call recorded."""

    realm_id = "r1"
    company_url = "https://qbo.test/v3/company/r1"
    request_id = staticmethod(request_id)

    def __init__(self, refuse: set[str] = frozenset()):
        self.attachables: dict[str, dict] = {}
        self.contents: dict[str, bytes] = {}
        self.refuse = set(refuse)  # file names answered with a per-file fault
        self.uploads: list[tuple[str, list[str]]] = []  # (request id, file names)
        self.queries: list[list[str]] = []
        self.batches: list[list] = []
        self.next_id = 100

    def send(self, method, url, *, params=None, content=None, headers=None, record_id=None):
        assert (method, url) == ("POST", f"{self.company_url}/upload")
        parts = parse_multipart(content, headers["Content-Type"])
        answers, names = [], []
        for name in sorted(p for p in parts if p.startswith("file_content_")):
            n = name.rsplit("_", 1)[1]
            metadata = json.loads(parts[f"file_metadata_{n}"][1])
            names.append(metadata["FileName"])
            if metadata["FileName"] in self.refuse:
                answers.append({"Fault": {"Error": [{"Message": "File too large",
                                                     "code": "6000"}],
                                          "type": "ValidationFault"}})
                continue
            self.next_id += 1
            attachable = {"Id": str(self.next_id), "SyncToken": "0",
                          "FileName": metadata["FileName"],
                          "AttachableRef": metadata["AttachableRef"]}
            self.attachables[attachable["Id"]] = attachable
            self.contents[attachable["Id"]] = parts[name][1]
            answers.append({"Attachable": dict(attachable)})
        self.uploads.append((params["requestid"], names))
        text = json.dumps({"AttachableResponse": answers})
        return SimpleNamespace(text=text, content=text.encode(), status_code=200)

    def query_in(self, entity, field, values, select="*"):
        assert (entity, field) == ("Attachable", "Id")
        self.queries.append(list(values))
        return [dict(self.attachables[v]) for v in values if v in self.attachables]

    def batch(self, operations, *, request_id=None):
        self.batches.append(list(operations))
        out = {}
        for op in operations:
            assert (op.entity, op.operation) == ("Attachable", "update")
            current = self.attachables[op.payload["Id"]]
            assert op.payload["SyncToken"] == current["SyncToken"] and op.payload["sparse"]
            current.update(AttachableRef=op.payload["AttachableRef"],
                           SyncToken=str(int(current["SyncToken"]) + 1))
            out[op.bid] = BatchResult(op.bid, value=dict(current))
        return out

    def refs(self, attachable_id: str) -> list[str]:
        return [r["EntityRef"]["value"] for r in self.attachables[attachable_id]["AttachableRef"]]


class FakeShop:
    """The shop's CDN: bytes per URL (a missing URL answers 404)."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.downloads: list[str] = []

    def download_image(self, url, *, record_id=None):
        self.downloads.append(url)
        if url not in self.files:
            raise LightspeedNotFound("image gone", method="GET", path=url, status=404)
        return self.files[url]


@pytest.fixture
def store(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    yield StateStore(engine)
    engine.dispose()


def _cdn(name: str) -> str:
    return f"https://cdn.test/shops/1/files/{name}.png"


def _named(name: str, content: bytes) -> str:
    """The file name of an uploaded image: its own name and the start of its byte hash."""
    return f"{name}-{hashlib.sha256(content).hexdigest()[:8]}.png"


def test_a_products_files_go_up_once_for_all_its_items_ten_to_a_request(store):
    # product A (3 variants) shows a1, a2; product B (1 variant) shows b1..b9 and a1's
    # bytes again under another URL: 11 distinct files, each one Attachable
    files = {_cdn("a1"): b"A1", _cdn("a2"): b"A2", _cdn("a1-copy"): b"A1",
             **{_cdn(f"b{i}"): f"B{i}".encode() for i in range(1, 10)}}
    shop, qbo = FakeShop(files), FakeQuickBooks()
    wants = [ItemImages(f"v{i}", f"{10 + i}", [_cdn("a1"), _cdn("a2")])
             for i in (1, 2, 3)]
    wants.append(ItemImages("v4", "14", [_cdn("a1-copy")] + [_cdn(f"b{i}") for i in range(1, 10)]))
    results = sync_images(shop, qbo, store, TENANT, wants)

    assert [len(names) for _rid, names in qbo.uploads] == [10, 1]
    assert len(qbo.attachables) == 11 and not qbo.queries and not qbo.batches
    by_name = {a["FileName"]: a["Id"] for a in qbo.attachables.values()}
    assert qbo.refs(by_name[_named("a1", b"A1")]) == ["11", "12", "13", "14"]  # = a1-copy
    assert qbo.refs(by_name[_named("a2", b"A2")]) == ["11", "12", "13"]
    assert qbo.refs(by_name[_named("b1", b"B1")]) == ["14"]
    assert sorted(shop.downloads) == sorted(files)  # each URL downloaded once
    assert {v: (r.uploaded, r.kept, r.error) for v, r in results.items()} == {
        "v1": (2, 0, None), "v2": (2, 0, None), "v3": (2, 0, None), "v4": (10, 0, None)}
    keys = [image_key(w.variant_id, u) for w in wants for u in w.urls]
    assert set(store.xrefs(TENANT, "image", keys, target_type="Attachable")) == set(keys)
    digests = {hashlib.sha256(content).hexdigest() for content in files.values()}
    held = store.xrefs(TENANT, IMAGE_FILE, digests, target_type="Attachable")
    assert {x.target_id for x in held.values()} == set(qbo.attachables)  # by the bytes

    # the same chunk again (a retried task, or nothing changed): nothing sent, nothing read
    again = sync_images(shop, qbo, store, TENANT, wants)
    assert len(qbo.uploads) == 2 and not qbo.queries and not qbo.batches
    assert len(shop.downloads) == len(files)
    assert {v: (r.uploaded, r.kept) for v, r in again.items()} == {
        "v1": (0, 2), "v2": (0, 2), "v3": (0, 2), "v4": (0, 10)}


def test_a_later_chunk_links_its_items_to_the_file_already_uploaded(store):
    shop = FakeShop({_cdn("a1"): b"A1", _cdn("a2"): b"A2"})
    qbo = FakeQuickBooks()
    first = [ItemImages("v1", "11", [_cdn("a1"), _cdn("a2")])]
    sync_images(shop, qbo, store, TENANT, first)
    assert [len(names) for _rid, names in qbo.uploads] == [2]
    ids = sorted(qbo.attachables)

    # the product's other variants, in the next chunk (or a later run)
    later = [ItemImages(f"v{i}", f"{10 + i}", [_cdn("a1"), _cdn("a2")])
             for i in (2, 3)]
    results = sync_images(shop, qbo, store, TENANT, later)
    assert len(qbo.uploads) == 1  # no bytes sent again
    assert qbo.queries == [ids]  # one look-up of both Attachables
    ((update_a, update_b),) = qbo.batches  # one batch with both sparse updates
    assert {op.payload["Id"] for op in (update_a, update_b)} == set(ids)
    assert [qbo.refs(i) for i in ids] == [["11", "12", "13"], ["11", "12", "13"]]
    assert [qbo.attachables[i]["SyncToken"] for i in ids] == ["1", "1"]
    assert {v: (r.uploaded, r.kept, r.error) for v, r in results.items()} == {
        "v2": (2, 0, None), "v3": (2, 0, None)}


def test_a_file_deleted_in_quickbooks_is_uploaded_again(store):
    shop, qbo = FakeShop({_cdn("a1"): b"A1"}), FakeQuickBooks()
    sync_images(shop, qbo, store, TENANT, [ItemImages("v1", "11", [_cdn("a1")])])
    (gone,) = list(qbo.attachables)
    del qbo.attachables[gone]  # deleted by hand in QuickBooks
    results = sync_images(shop, qbo, store, TENANT, [ItemImages("v2", "12", [_cdn("a1")])])
    assert qbo.queries == [[gone]] and not qbo.batches
    assert [len(names) for _rid, names in qbo.uploads] == [1, 1]
    # the same bytes for another item: a new request, never a replay of the first answer
    assert qbo.uploads[0][0] != qbo.uploads[1][0]
    (again,) = list(qbo.attachables)
    assert qbo.refs(again) == ["12"] and results["v2"].uploaded == 1
    file_xref = store.xrefs(TENANT, IMAGE_FILE, [hashlib.sha256(b"A1").hexdigest()],
                            target_type="Attachable")
    assert [x.target_id for x in file_xref.values()] == [again]
    held = store.xrefs(TENANT, "image", [image_key("v2", _cdn("a1"))], target_type="Attachable")
    assert [x.target_id for x in held.values()] == [again]


def test_a_bad_file_fails_only_its_items_and_is_tried_again_next_run(store):
    shop = FakeShop({_cdn("ok"): b"OK", _cdn("big"): b"BIG"})  # "lost" is not on the CDN
    qbo = FakeQuickBooks(refuse={_named("big", b"BIG")})
    wants = [ItemImages("v1", "11", [_cdn("ok"), _cdn("lost")]),
             ItemImages("v2", "12", [_cdn("big")])]
    results = sync_images(shop, qbo, store, TENANT, wants)
    assert [names for _rid, names in qbo.uploads] == [[_named("ok", b"OK"), _named("big", b"BIG")]]
    assert results["v1"].uploaded == 1 and results["v1"].error == \
        "image 2: download failed (image gone)"
    assert results["v2"].uploaded == 0 and results["v2"].error == "image 1: File too large"
    assert len(qbo.attachables) == 1
    # next run: the refused file goes up again (alone), the attached one is kept
    qbo.refuse.clear()
    again = sync_images(shop, qbo, store, TENANT, wants)
    assert [names for _rid, names in qbo.uploads][1:] == [[_named("big", b"BIG")]]
    assert (again["v1"].kept, again["v2"].uploaded, again["v2"].error) == (1, 1, None)


def test_an_upload_request_id_is_stable_across_retries(tmp_path):
    """A retried task (its xrefs never saved: the answer was lost) sends the same upload
    request under the same request id, so QuickBooks answers it from the first."""
    wants = [ItemImages("v1", "11", [_cdn("a1")])]
    rids = []
    for attempt in ("one", "two"):
        engine = sa.create_engine(f"sqlite:///{tmp_path / f'{attempt}.db'}")
        qbo = FakeQuickBooks()
        sync_images(FakeShop({_cdn("a1"): b"A1"}), qbo, StateStore(engine), TENANT, wants)
        rids += [rid for rid, _names in qbo.uploads]
        engine.dispose()
    assert rids[0] == rids[1]


def test_an_upload_request_stays_under_its_byte_budget(store, monkeypatch):
    from koppel.hooks import qbo_writer

    monkeypatch.setattr(qbo_writer, "UPLOAD_BYTES", 10)
    files = {_cdn("a"): b"aaaa", _cdn("b"): b"bbbb", _cdn("big"): b"x" * 25, _cdn("c"): b"cc"}
    qbo = FakeQuickBooks()
    wants = [ItemImages("v1", "11", list(files))]
    results = sync_images(FakeShop(files), qbo, store, TENANT, wants)
    # 4 + 4 bytes fit; the 25-byte file goes alone; then 2 bytes start a new request
    assert [names for _rid, names in qbo.uploads] == [
        [_named("a", b"aaaa"), _named("b", b"bbbb")], [_named("big", b"x" * 25)],
        [_named("c", b"cc")]]
    assert (results["v1"].uploaded, results["v1"].error) == (4, None)
