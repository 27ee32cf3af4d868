"""MkDocs hook: pages whose content comes from the repository, not from copies pasted by hand.

- `<!-- bench-results: ID -->` becomes the table of `bench/results/ID.md` (and its machine line),
  so the figures shown are those the benchmark wrote.
- `<!-- events-reference -->` becomes a reference of every event of the installed domains, from
  their Avro schemas and their services' contracts: fields and types, who emits, who consumes.
- `<!-- readme -->` becomes the README (the site's home), its links made relative to docs/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
_BENCH = re.compile(r"<!-- bench-results: ([0-9A-Za-z_-]+) -->")
_EVENTS = "<!-- events-reference -->"
_README = "<!-- readme -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    markdown = _BENCH.sub(lambda m: _bench_table(m.group(1)), markdown)
    if _EVENTS in markdown:
        markdown = markdown.replace(_EVENTS, events_reference())
    if _README in markdown:
        readme = (ROOT / "README.md").read_text().replace("](docs/", "](")
        markdown = markdown.replace(_README, readme.replace("](adr/)", "](adr/0001-local-stack.md)"))
    return markdown


def _bench_table(run_id: str) -> str:
    path = ROOT / "bench" / "results" / f"{run_id}.md"
    lines = path.read_text().splitlines()
    body: list[str] = []
    for line in lines[1:]:  # the first line is the run's title
        if body and not line.strip() and body[-1].startswith("Machine:"):
            break
        body.append(line)
    return "\n".join(body).strip() + f"\n\n(`bench/results/{run_id}.md`)\n"


def _avro_type(t: Any) -> str:
    if isinstance(t, list):
        return " or ".join(_avro_type(x) for x in t)
    if isinstance(t, dict):
        if t.get("logicalType"):
            return str(t["logicalType"])
        if t.get("type") == "array":
            return f"array of {_avro_type(t['items'])}"
        if t.get("type") == "map":
            return f"map of {_avro_type(t['values'])}"
        return str(t.get("name") or t.get("type"))
    return str(t)


def events_reference() -> str:
    from choreo import bootstrap
    from choreo.domain import installation
    from choreo.serde.schemas import load_event_schemas

    installed = installation()
    services = list(installed.services)
    schemas = load_event_schemas(bootstrap.event_classes(services), *bootstrap.schema_roots())
    emitters: dict[type, list[str]] = {}
    readers: dict[type, list[str]] = {}
    for s in services:
        for cls in s.emits:
            emitters.setdefault(cls, []).append(f"{s.name} (topic `{s.own_topic}`)")
        for topic, classes in s.inputs.items():
            for cls in classes:
                readers.setdefault(cls, []).append(f"{s.name} (from `{topic}`)")
    out = [f"Envelope fields of every event: {', '.join(f'`{f}`' for f in installed.envelope.fields)} "
           f"(partition key `{installed.envelope.key_field}`, saga id `{installed.envelope.saga_field}`).\n"]
    for name in sorted(schemas, key=lambda n: n.rsplit(".", 1)[-1]):
        schema = schemas[name]
        parsed = json.loads(schema.text)
        cls = schema.cls
        out.append(f"## {name.rsplit('.', 1)[-1]}\n")
        out.append(f"`{name}`: {parsed.get('doc', '')}\n")
        emitted = ", ".join(emitters.get(cls, [])) or "the edge (a command) or no service"
        read = ", ".join(readers.get(cls, [])) or "no service"
        out.append(f"- emitted by: {emitted}\n- read by: {read}\n")
        out.append("| field | type | meaning |\n|---|---|---|")
        for f in parsed["fields"]:
            doc = str(f.get("doc", "")).replace("|", "\\|").replace("\n", " ")
            out.append(f"| `{f['name']}` | {_avro_type(f['type'])} | {doc} |")
        out.append("")
    return "\n".join(out)
