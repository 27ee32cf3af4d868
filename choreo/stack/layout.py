"""Where the stack keeps its files: jars (shared, cached) and one state folder per running stack."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# stack/ in the source tree: pom.xml and the config templates.
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class StackLayout:
    """Paths of one stack: `state_dir` holds pids, logs and data; `jars_dir` the cached jars.

    They are separate so that tests can run a throw-away stack in a temp folder while reusing the
    jars already downloaded into the project's `.stack/`.
    """

    state_dir: Path
    jars_dir: Path

    @classmethod
    def of(cls, state_dir: Path, jars_dir: Path | None = None) -> StackLayout:
        state = state_dir.expanduser().resolve()
        jars = (jars_dir or state_dir).expanduser().resolve()
        return cls(state_dir=state, jars_dir=jars)

    @property
    def lib_dir(self) -> Path:
        return self.jars_dir / "lib"

    @property
    def apicurio_dir(self) -> Path:
        return self.jars_dir / "apicurio"

    @property
    def cds_dir(self) -> Path:
        """Class-data-sharing archives: made on the first start, they make later starts faster."""
        return self.jars_dir / "cds"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pids_dir(self) -> Path:
        return self.state_dir / "pids"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def config_dir(self) -> Path:
        return self.state_dir / "config"

    @property
    def stack_file(self) -> Path:
        """The endpoints and ports of the stack, read by `choreo` commands to find the cluster."""
        return self.state_dir / "stack.json"

    def kafka_data(self, node_id: int) -> Path:
        return self.data_dir / f"kafka-{node_id}"

    def registry_data(self) -> Path:
        return self.data_dir / "registry"

    def log_file(self, component: str) -> Path:
        return self.logs_dir / f"{component}.log"

    def pid_file(self, component: str) -> Path:
        return self.pids_dir / f"{component}.pid"

    def template(self, name: str) -> Path:
        return TEMPLATES_DIR / name

    def ensure_dirs(self) -> None:
        for path in (self.logs_dir, self.pids_dir, self.data_dir, self.config_dir):
            path.mkdir(parents=True, exist_ok=True)
