"""What reading tenant files costs at DAG-parse time (issue 20), and that the shortcuts
change no outcome: the default mapping's rules are validated once per process (a tenant's
own rules every time), a worker's look for tenants sharing its connections parses only
the files that can name them, and the tenant and mapping packages import their heavy
modules only when used."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from koppel.tenants import loader
from koppel.tenants.loader import load_default_mapping, load_tenants, parse_tenant, prevalidated_default

ROOT = Path(__file__).resolve().parents[2]
DEMO = json.loads((ROOT / "include" / "mappings" / "demo.json").read_text(encoding="utf-8"))
INVALID = ROOT / "tests" / "unit" / "invalid_tenants"


def _demo(**mappings) -> dict:
    doc = copy.deepcopy(DEMO)
    doc.pop("$schema", None)
    for flow, rules in mappings.items():
        doc["mappings"][flow] = rules
    return doc


# every kind of override the merge knows, valid and not
CASES = {
    "demo as shipped": _demo(),
    "a list rule's field replaced, one removed": _demo(
        orders={"lines": {"fields": {"sku": {"path": "articleCode", "transforms": ["trim"]},
                                     "quantity": None}}}),
    "a list rule's field with a bad path": _demo(orders={"lines": {"fields": {"sku": {"path": "bad path!!"}}}}),
    "a list rule's each and on": _demo(orders={"lines": {"each": "_rows", "on": "create_only",
                                                         "fields": {"sku": "articleCode"}}}),
    "a list rule's bad on": _demo(orders={"lines": {"on": "sometimes", "fields": {}}}),
    "a list rule's fields not an object": _demo(orders={"lines": {"fields": "x"}}),
    "an unknown transform": _demo(orders={"memo": {"path": "comment", "transforms": ["nope"]}}),
    "an unknown target": _demo(orders={"nonexistent": "comment"}),
    "a default rule removed": _demo(orders={"customer.email": None}),
    "two sources": _demo(products={"name": {"const": "x", "path": "title"}}),
    "a flow that has no mapping": _demo(refunds={}),
    "a flow's rules not an object": _demo(orders=[]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_prevalidated_default_gives_the_same_tenant_and_the_same_errors(name):
    raw, problems = load_default_mapping()
    assert problems == []
    prevalidated = prevalidated_default(raw)
    assert prevalidated is not raw
    label = "include/mappings/demo.json"
    expected, expected_errors = parse_tenant(copy.deepcopy(CASES[name]), label, raw, "demo")
    tenant, errors = parse_tenant(copy.deepcopy(CASES[name]), label, prevalidated, "demo")
    assert errors == expected_errors
    if expected is None:
        assert tenant is None and errors, name
    else:
        assert tenant == expected
        assert tenant.mappings.model_dump(exclude_unset=True) == \
            expected.mappings.model_dump(exclude_unset=True)


def test_the_known_errors_are_unchanged_for_every_invalid_tenant_file():
    """The corpus of broken tenant files: the same problems with the raw default as with
    the prevalidated one the loader uses."""
    raw, _ = load_default_mapping()
    files = sorted(INVALID.glob("*.json"))
    assert len(files) >= 30
    for path in files:
        data, problems = loader.read_json(path)
        if problems:
            continue
        assert parse_tenant(data, str(path), prevalidated_default(raw), path.stem)[1] == \
            parse_tenant(data, str(path), raw, path.stem)[1], path.name


def test_the_default_rules_are_validated_once_and_shared_by_every_tenant(tmp_path):
    for tenant in ("acme", "bolt"):
        doc = _demo(orders={"memo": {"path": "comment"}})
        doc["tenant"] = tenant
        doc["connections"] = {"lightspeed": f"ls_{tenant}", "quickbooks": f"qb_{tenant}"}
        (tmp_path / f"{tenant}.json").write_text(json.dumps(doc), encoding="utf-8")
    result = load_tenants(tmp_path)
    assert result.errors == [] and result.ids() == ["acme", "bolt"]
    acme, bolt = (result.get(t).mappings.orders for t in ("acme", "bolt"))
    # the default's rule: one validated object for both tenants
    default_rule = acme.model_dump(by_alias=True, exclude_unset=True)["customer.email"]
    assert default_rule
    shared = type(acme).model_fields
    name = next(n for n, info in shared.items() if info.alias == "customer.email")
    assert getattr(acme, name) is getattr(bolt, name)
    # each tenant's own rule: validated from its own file
    memo = next(n for n, info in shared.items() if info.alias == "memo")
    assert getattr(acme, memo) == getattr(bolt, memo)
    assert getattr(acme, memo) is not getattr(bolt, memo)
    assert getattr(acme, memo).path == "comment" and getattr(acme, memo).transforms == []


def test_an_installations_default_is_cached_by_its_content(tmp_path):
    """Changing ``_default.json`` changes the rules the next load uses."""
    raw, _ = load_default_mapping()
    own = copy.deepcopy(raw)
    own["orders"]["memo"] = {"const": "first"}
    (tmp_path / "_default.json").write_text(json.dumps(own), encoding="utf-8")
    doc = _demo()
    doc["tenant"] = "acme"
    doc["mappings"] = {}
    (tmp_path / "acme.json").write_text(json.dumps(doc), encoding="utf-8")
    assert load_tenants(tmp_path).get("acme").rules("orders")["memo"].const == "first"
    own["orders"]["memo"] = {"const": "second"}
    (tmp_path / "_default.json").write_text(json.dumps(own), encoding="utf-8")
    assert load_tenants(tmp_path).get("acme").rules("orders")["memo"].const == "second"


def test_a_broken_default_is_reported_and_not_cached(tmp_path):
    raw, _ = load_default_mapping()
    broken = copy.deepcopy(raw)
    broken["orders"]["memo"] = {"path": "comment", "transforms": ["nope"]}
    assert prevalidated_default(broken) is broken  # left as it is: load_default_mapping reports it
    (tmp_path / "_default.json").write_text(json.dumps(broken), encoding="utf-8")
    doc = _demo()
    doc["tenant"] = "acme"
    (tmp_path / "acme.json").write_text(json.dumps(doc), encoding="utf-8")
    result = load_tenants(tmp_path)
    assert [(e.file, e.path) for e in result.errors] == \
        [(str(tmp_path / "_default.json"), "$.orders.memo.transforms[0]")]
    assert result.ids() == ["acme"]  # checked against the shipped default instead


# -- a worker's look for tenants that share its connections -----------------------------------
def _tenant(folder: Path, tenant: str, lightspeed: str, text: str | None = None) -> None:
    doc = {"tenant": tenant, "connections": {"lightspeed": lightspeed, "quickbooks": f"qb_{tenant}"}}
    (folder / f"{tenant}.json").write_text(text or json.dumps(doc), encoding="utf-8")


def test_a_connection_written_with_a_json_escape_is_still_found(tmp_path):
    from koppel.tenants.lookup import _sharing_connections, _tenant_set

    _tenant(tmp_path, "acme", "ls_shop")
    # "ls\u005fshop" is "ls_shop": the text does not hold the id, the JSON does
    _tenant(tmp_path, "bolt", "", '{"tenant": "bolt", "connections": {"lightspeed": '
                                  '"ls\\u005fshop", "quickbooks": "qb_bolt"}}')
    _tenant(tmp_path, "cora", "ls_shop_two")  # holds the id as part of another one
    _tenant(tmp_path, "dora", "ls_other", '{"tenant": "dora", "connections": {"lightspeed": '
                                          '"ls_other", "quickbooks": "qb_dora"}, '
                                          '"$comment": "\\u2026"}')
    assert _sharing_connections(tmp_path, "acme") == ["bolt"]
    worker = _tenant_set(str(tmp_path), "acme")
    full = load_tenants(tmp_path)
    assert worker.get("acme") is None and full.get("acme") is None
    assert [str(e) for e in worker.errors] == \
        [str(e) for e in full.errors if "acme" in e.file or "bolt" in e.file]
    assert "connection 'ls_shop' is also used by tenant(s) bolt" in str(worker.errors[0])
    _tenant_set.cache_clear()


def test_the_files_that_cannot_name_a_connection_are_not_parsed(tmp_path, monkeypatch):
    from koppel.tenants import lookup

    _tenant(tmp_path, "acme", "ls_acme")
    for tenant in ("bolt", "cora", "dora"):
        _tenant(tmp_path, tenant, f"ls_{tenant}")
    _tenant(tmp_path, "echo", "ls_acme")
    parsed: list[str] = []
    real = json.loads

    def spy(text, *args, **kwargs):
        parsed.append(real(text)["tenant"])
        return real(text, *args, **kwargs)

    monkeypatch.setattr(lookup.json, "loads", spy)
    assert lookup._sharing_connections(tmp_path, "acme") == ["echo"]
    assert sorted(parsed) == ["acme", "echo"]


@pytest.mark.parametrize("text, ids, may", [
    ('{"c": "ls_shop"}', {"ls_shop"}, True),
    ('{"c": "ls_other"}', {"ls_shop"}, False),
    ('{"c": "ls\\u005fshop"}', {"ls_shop"}, True),        # an escape for "_"
    ('{"c": "ls\\/shop", "d": "x"}', {"ls/shop"}, True),   # "\\/" is "/"
    ('{"c": "ls_other", "memo": "\\u2026"}', {"ls_shop"}, False),  # "…" spells no ASCII id
    ('{"c": "ls_other", "memo": "\\\\u2026"}', {"ls_shop"}, True),  # an escaped backslash
    ('{"c": "ls_sh\\u00f6p"}', {"ls_shöp"}, True),       # a non-ASCII id: any escape
    ('{"c": "ls_other"}', {"ls_shöp"}, False),
])
def test_a_file_is_parsed_whenever_it_can_name_a_connection(text, ids, may):
    from koppel.tenants.lookup import _may_name

    assert _may_name(text, ids) is may
    # never a wrong "no": when the parsed file holds the id, the text may name it
    values = set(json.loads(text).values())
    if values & ids:
        assert may


def test_tenant_files_lists_tenant_files_only(tmp_path):
    for name in ("b.json", "a.json", "_default.json", ".hidden.json", "tenant.schema.json",
                 "notes.txt"):
        (tmp_path / name).write_text("{}", encoding="utf-8")
    (tmp_path / "dir.json").mkdir()
    os.symlink(tmp_path / "a.json", tmp_path / "c.json")
    assert loader.tenant_files(tmp_path) == [tmp_path / "a.json", tmp_path / "b.json",
                                             tmp_path / "c.json"]
    assert loader.tenant_files(tmp_path / "missing") == []


# -- light imports ----------------------------------------------------------------------------
def test_the_tenant_and_mapping_packages_import_their_parts_when_used():
    code = (
        "import sys\n"
        "import koppel.factory\n"
        "assert 'pydantic' not in sys.modules, 'koppel.factory imported pydantic'\n"
        "import koppel.tenants.loader\n"
        "assert 'koppel.mapping.mapper' not in sys.modules\n"
        "from koppel.tenants import load_tenants, TenantConfig, FLOW_NAMES, loader\n"
        "from koppel.mapping import Mapper, TRANSFORMS, FieldRule\n"
        "import koppel.tenants, koppel.mapping\n"
        "assert koppel.mapping.Mapper is sys.modules['koppel.mapping.mapper'].Mapper\n"
        "assert set(koppel.tenants.__all__) <= set(dir(koppel.tenants))\n"
        "try:\n"
        "    koppel.tenants.nothing\n"
        "except AttributeError as exc:\n"
        "    assert 'nothing' in str(exc)\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"
