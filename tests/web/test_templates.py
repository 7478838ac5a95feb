"""The UI plugin's Jinja2 templates: loaded through the package with autoescaping and
``StrictUndefined``, none of them opting out of escaping, each compiling, and every one
shipped as package data by ``pyproject.toml``."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest
from jinja2 import StrictUndefined, UndefinedError

from koppel.web.templating import environment, render

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "koppel" / "web" / "templates"
PACKAGE = "koppel.web.templates"


def _template_files() -> list[str]:
    return sorted(p.name for p in TEMPLATES.iterdir() if p.suffix == ".html")


def test_environment_escapes_html_and_refuses_undefined_names():
    env = environment()
    assert env.undefined is StrictUndefined
    assert env.autoescape("dashboard.html") is True
    assert env.autoescape("doctor_report.html") is True
    markup = env.from_string("{{ value }}").render(value="<b>\"a\" & 'b'</b>")
    assert markup == "&lt;b&gt;&#34;a&#34; &amp; &#39;b&#39;&lt;/b&gt;"
    with pytest.raises(UndefinedError):
        render("doctor_index.html", title="koppel doctor", base="")  # no ``tenants``


def test_every_template_compiles_and_none_opts_out_of_escaping():
    files = _template_files()
    assert {"dashboard.html", "doctor_index.html", "doctor_report.html"} <= set(files)
    assert sorted(environment().list_templates(extensions=["html"])) == files
    for name in files:
        environment().get_template(name)
        source = (TEMPLATES / name).read_text(encoding="utf-8")
        assert not re.search(r"\|\s*safe\b|autoescape\s+false|Markup", source), name


def test_templates_ship_as_package_data():
    """setuptools packs ``koppel/web/templates/*.html`` only if the folder is a package
    and a package-data pattern covers the files."""
    assert (TEMPLATES / "__init__.py").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    included = config["packages"]["find"]["include"]
    assert any(fnmatch.fnmatch(PACKAGE, pattern) for pattern in included)
    patterns = [p for package, globs in config["package-data"].items()
                if package in ("*", PACKAGE) for p in globs]
    for name in _template_files():
        assert any(fnmatch.fnmatch(name, p) for p in patterns), f"{name} not packaged"
