"""The docs site's event reference (docs/hooks/generated.py): a page per event of the installed
domains, each saying who emits and who reads it, with every field of its schema."""

from __future__ import annotations

import importlib.util
import json
import sys
from types import ModuleType

from choreo import bootstrap
from choreo.domain import installation
from choreo.serde.schemas import load_event_schemas
from harness.paths import REPO


def _hook() -> ModuleType:
    path = REPO / "docs" / "hooks" / "generated.py"
    spec = importlib.util.spec_from_file_location("docs_hooks_generated", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_hooks_generated"] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def test_every_installed_event_has_a_page_with_each_of_its_fields() -> None:
    services = list(installation().services)
    schemas = load_event_schemas(bootstrap.event_classes(services), *bootstrap.schema_roots())
    pages = {page.name: page for page in _hook().event_pages()}
    assert set(pages) == set(schemas)
    for name, schema in schemas.items():
        for field in json.loads(schema.text)["fields"]:
            assert f"| `{field['name']}` |" in pages[name].markdown, (name, field["name"])


def test_a_page_names_who_emits_and_who_reads_its_event() -> None:
    pages = {page.short: page for page in _hook().event_pages()}
    assert pages["PlaceOrder"].read_by == "orders (from `orders.commands`)"
    assert pages["OrderPlaced"].emitted_by == "orders (topic `orders`)"
    assert "packaging (from `orders`)" in pages["OrderPlaced"].read_by


def test_the_index_links_every_page() -> None:
    hook = _hook()
    index = hook.events_reference()
    for page in hook.event_pages():
        assert f"({page.path.removeprefix('reference/')})" in index
