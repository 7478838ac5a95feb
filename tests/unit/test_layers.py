"""Arrows only point down (docs/architecture.md, "Layers"): a module may import from its
own layer and the layers below it, never from a layer above. The layers, bottom up:

    domain, limits, pools, privacy        pure money, VAT, names; published API limits
    tenants, mapping, store               tenant files, the datamapper, the state database
    hooks, alerts                         connections and calls (one QuickBooks writer)
    steps                                 the kernel (records, results, runs) and operators
    flows                                 what each flow does, on the kernel
    DAG assembly, web, cli, …             factory, dags/, dashboard, command line

The sandboxes stand beside koppel (they are the services): they may read the published
limits and nothing else of koppel. The test reads every module's imports (module level
and function level alike), so a lazy import cannot hide an arrow pointing up."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "koppel"

RANK = {"domain": 0, "limits": 0, "privacy": 0, "pools": 0,
        "tenants": 1, "mapping": 1, "store": 1,
        "hooks": 2, "alerts": 2,
        "steps": 3,
        "flows": 4}
TOP = 5  # everything else: factory, cli, web, demo, doctor, retention, alerts, pools, …
SANDBOX_MAY_IMPORT = {"sandbox", "limits"}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "koppel"


def _imports(path: Path) -> set[str]:
    module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                found.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                found.add(node.module)
    return {name for name in found if name == "koppel" or name.startswith("koppel.")}


def _violations() -> list[str]:
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        layer = _layer(module)
        for target in sorted(_imports(path)):
            other = _layer(target)
            if other == layer or other == "koppel":
                continue
            if layer == "sandbox":
                if other not in SANDBOX_MAY_IMPORT:
                    bad.append(f"{module} imports {target} (the sandboxes stand beside koppel)")
                continue
            if other == "sandbox":
                if RANK.get(layer, TOP) < TOP:
                    bad.append(f"{module} imports {target} (only the top layer may start sandboxes)")
                continue
            if RANK.get(other, TOP) > RANK.get(layer, TOP):
                bad.append(f"{module} ({layer}) imports {target} ({other}): an arrow pointing up")
    return bad


def test_arrows_only_point_down():
    assert _violations() == []


def test_the_check_sees_an_arrow_pointing_up(tmp_path, monkeypatch):
    """The rule is not vacuous: a domain module importing a flow is reported."""
    fake = tmp_path / "koppel"
    (fake / "domain").mkdir(parents=True)
    (fake / "domain" / "bad.py").write_text("def f():\n    import koppel.flows.orders\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", fake)
    assert _violations() == ["koppel.domain.bad (domain) imports koppel.flows.orders (flows): "
                             "an arrow pointing up"]
