"""MkDocs hook: pages whose content comes from the repository, not from copies pasted by hand.

- `<!-- bench-results: ID -->` becomes the table of `bench/results/ID.md` (and its machine line),
  so the figures shown are those the benchmark wrote.
- Every event of the installed domains gets a page of its own (`reference/events/<full name>.md`,
  generated, not in the repository), from its Avro schema and its services' contracts: fields
  and types, who emits, who consumes, the schema; `<!-- events-reference -->` becomes their index.
- `<!-- readme -->` becomes the README (the site's home), its links made relative to docs/.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
_BENCH = re.compile(r"<!-- bench-results: ([0-9A-Za-z_-]+) -->")
_EVENTS = "<!-- events-reference -->"
_README = "<!-- readme -->"
_EVENT_PAGES = "reference/events"  # one generated page per event, under docs/


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


@dataclass(frozen=True)
class EventPage:
    """One event's reference page: where it goes in the site, and what it says."""

    name: str  # the schema's full name
    path: str  # the page's place under docs/
    emitted_by: str
    read_by: str
    markdown: str

    @property
    def short(self) -> str:
        return self.name.rsplit(".", 1)[-1]


def event_pages() -> list[EventPage]:
    """A page per event of the installed domains, from its Avro schema and its services' contracts."""
    from choreo import bootstrap
    from choreo.domain import installation
    from choreo.serde.schemas import load_event_schemas

    services = list(installation().services)
    schemas = load_event_schemas(bootstrap.event_classes(services), *bootstrap.schema_roots())
    emitters: dict[type, list[str]] = {}
    readers: dict[type, list[str]] = {}
    for s in services:
        for cls in s.emits:
            emitters.setdefault(cls, []).append(f"{s.name} (topic `{s.own_topic}`)")
        for topic, classes in s.inputs.items():
            for cls in classes:
                readers.setdefault(cls, []).append(f"{s.name} (from `{topic}`)")
    pages = []
    for name in sorted(schemas, key=lambda n: (n.rsplit(".", 1)[-1], n)):
        schema = schemas[name]
        parsed = json.loads(schema.text)
        emitted = ", ".join(emitters.get(schema.cls, [])) or "the edge (a command) or no service"
        read = ", ".join(readers.get(schema.cls, [])) or "no service"
        lines = [
            f"# {name.rsplit('.', 1)[-1]}\n",
            f"`{name}`: {parsed.get('doc', '')}\n",
            f"- emitted by: {emitted}\n- read by: {read}\n",
            "| field | type | meaning |\n|---|---|---|",
        ]
        for f in parsed["fields"]:
            doc = str(f.get("doc", "")).replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{f['name']}` | {_avro_type(f['type'])} | {doc} |")
        lines += ["", "## Avro schema\n", "```json", json.dumps(parsed, indent=2), "```", "",
                  "[All events](../events.md)", ""]
        pages.append(EventPage(name, f"{_EVENT_PAGES}/{name}.md", emitted, read, "\n".join(lines)))
    return pages


def events_reference() -> str:
    """The index of the event pages, with the envelope every event carries."""
    from choreo.domain import installation

    envelope = installation().envelope
    out = [f"Envelope fields of every event: {', '.join(f'`{f}`' for f in envelope.fields)} "
           f"(partition key `{envelope.key_field}`, saga id `{envelope.saga_field}`).\n",
           "| event | emitted by | read by |", "|---|---|---|"]
    for page in event_pages():
        link = page.path.removeprefix("reference/")
        out.append(f"| [{page.short}]({link}) | {page.emitted_by} | {page.read_by} |")
    return "\n".join(out) + "\n"


def on_files(files: Any, config: Any) -> Any:
    """Adds the generated page of every event (they are not in the nav: the index links them)."""
    from mkdocs.structure.files import File

    for page in event_pages():
        files.append(File.generated(config, page.path, content=page.markdown))
    return files
