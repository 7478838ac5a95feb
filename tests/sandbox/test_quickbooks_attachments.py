"""Attachables in the QBO sandbox as the products flow uses them (issue 20): one upload
linked to several items (``AttachableRef`` is an array), several files in one upload
request (numbered part pairs, one answer per file), and a sparse update that adds items
to an uploaded file's ``AttachableRef`` without touching the file.

Sources: Intuit "Attach images and notes"
(https://developer.intuit.com/app/developer/qbo/docs/workflows/attach-images-and-notes)
and the Attachable entity reference
(https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/attachable);
what is assumed is listed in docs/sandbox-fidelity.md."""

from __future__ import annotations

import json

from quickbooks_fixtures import *  # noqa: F401,F403


def _upload(qb, parts: list[tuple[dict, str, bytes]]):
    """One ``POST /upload`` with a ``file_metadata_0n``/``file_content_0n`` pair per part."""
    files = {}
    for n, (metadata, name, content) in enumerate(parts, start=1):
        files[f"file_metadata_{n:02d}"] = (None, json.dumps(metadata), "application/json")
        files[f"file_content_{n:02d}"] = (name, content, metadata.get("ContentType", "image/png"))
    return qb.session.post(f"{qb.api_url}/company/{qb.company_id}/upload",
                           params={"minorversion": 75}, files=files)


def _refs(*ids: str) -> list[dict]:
    return [{"EntityRef": {"type": "Item", "value": i}} for i in ids]


def _query(qb, sql: str) -> list[dict]:
    answer = qb.session.post(f"{qb.api_url}/company/{qb.company_id}/query",
                             params={"minorversion": 75}, data=sql,
                             headers={"Content-Type": "application/text"})
    assert answer.status_code == 200, answer.text
    return answer.json()["QueryResponse"].get("Attachable", [])


def test_one_upload_links_a_file_to_several_items_and_carries_several_files(sandbox, qb):
    answer = _upload(qb, [
        ({"AttachableRef": _refs("3", "4"), "FileName": "shirt-1.png", "ContentType": "image/png"},
         "shirt-1.png", b"\x89PNG-one"),
        ({"AttachableRef": _refs("4"), "FileName": "shirt-2.png", "ContentType": "image/png"},
         "shirt-2.png", b"\x89PNG-two!"),
    ])
    assert answer.status_code == 200
    first, second = (r["Attachable"] for r in answer.json()["AttachableResponse"])
    assert (first["FileName"], first["Size"]) == ("shirt-1.png", len(b"\x89PNG-one"))
    assert (second["FileName"], second["Size"]) == ("shirt-2.png", len(b"\x89PNG-two!"))
    assert [r["EntityRef"] for r in first["AttachableRef"]] == [
        {"type": "Item", "value": "3"}, {"type": "Item", "value": "4"}]
    assert [r["EntityRef"]["value"] for r in second["AttachableRef"]] == ["4"]
    for attachable, content in ((first, b"\x89PNG-one"), (second, b"\x89PNG-two!")):
        stored = sandbox.get(f"/_sandbox/realms/{qb.company_id}/attachments/{attachable['Id']}")
        assert stored.content == content
    on_three = _query(qb, "SELECT * FROM Attachable WHERE AttachableRef.EntityRef.value = '3'")
    assert [a["Id"] for a in on_three] == [first["Id"]]


def test_a_bad_file_of_an_upload_is_its_own_fault(qb):
    answer = _upload(qb, [
        ({"AttachableRef": _refs("4"), "FileName": "good.png", "ContentType": "image/png"},
         "good.png", b"good"),
        ({"AttachableRef": _refs("999999"), "FileName": "bad.png", "ContentType": "image/png"},
         "bad.png", b"bad"),
    ])
    assert answer.status_code == 200
    good, bad = answer.json()["AttachableResponse"]
    assert good["Attachable"]["FileName"] == "good.png"
    assert "Attachable" not in bad and bad["Fault"]["Error"][0]["code"] == "2500"


def test_a_sparse_update_adds_items_to_an_uploaded_file_and_keeps_the_file(sandbox, qb):
    answer = _upload(qb, [({"AttachableRef": _refs("3"), "FileName": "cap.png",
                            "ContentType": "image/png"}, "cap.png", b"\x89PNG-cap")])
    uploaded = answer.json()["AttachableResponse"][0]["Attachable"]
    body = {"Id": uploaded["Id"], "SyncToken": uploaded["SyncToken"], "sparse": True,
            "AttachableRef": uploaded["AttachableRef"] + _refs("4")}
    updated = qb.session.post(f"{qb.api_url}/company/{qb.company_id}/attachable",
                              params={"minorversion": 75}, json=body)
    assert updated.status_code == 200, updated.text
    after = updated.json()["Attachable"]
    assert after["SyncToken"] == str(int(uploaded["SyncToken"]) + 1)
    assert [r["EntityRef"]["value"] for r in after["AttachableRef"]] == ["3", "4"]
    for field in ("FileName", "ContentType", "Size", "FileAccessUri", "TempDownloadUri"):
        assert after[field] == uploaded[field], field
    stored = sandbox.get(f"/_sandbox/realms/{qb.company_id}/attachments/{uploaded['Id']}")
    assert stored.content == b"\x89PNG-cap"
    on_four = _query(qb, "SELECT * FROM Attachable WHERE AttachableRef.EntityRef.value = '4'")
    assert [a["Id"] for a in on_four] == [uploaded["Id"]]
    stale = qb.session.post(f"{qb.api_url}/company/{qb.company_id}/attachable",
                            params={"minorversion": 75}, json=body)
    assert stale.status_code == 400
    assert stale.json()["Fault"]["Error"][0]["code"] == "5010"
