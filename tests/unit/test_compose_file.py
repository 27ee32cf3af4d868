"""docker-compose.yml and the Dockerfile, read as files: no Docker engine is needed (or used).

The rules: every service is there, every image has a pinned tag, the workers are supervised
(restart policy, health check, started after `init` succeeded), nothing listens beyond 127.0.0.1
on the host, the choreo image is built by one service and never pulled, and no service runs as
root. The Dockerfile builds in two stages from a base pinned by digest, installs the dependencies
at their constraints.txt versions, has a variant with choreo's extras, and runs `choreo` as a
non-root user.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib
from typing import Any

import pytest
import yaml

from harness.paths import REPO

ROOT = REPO
WORKERS = ("orders", "packaging", "drones", "delivery")


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def _ui_services(services: dict[str, dict[str, Any]]) -> list[str]:
    return [name for name, svc in services.items() if "ui" in svc.get("profiles", [])]


def test_every_service_is_there(services: dict[str, dict[str, Any]]) -> None:
    assert {"kafka", "registry", "init", *WORKERS} <= set(services)
    ui = _ui_services(services)
    assert len(ui) == 1, "one Kafka web UI, only in the profile ui"
    assert "kafka-ui" in services[ui[0]]["image"]
    # Nothing else hides behind a profile: `docker compose up` starts the whole saga.
    assert [n for n, s in services.items() if s.get("profiles")] == ui


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        image = svc.get("image")
        assert image, f"{name} has no image"
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert tag and tag != "latest", f"{name}: {image} is not pinned to a version"


def test_kafka_registry_and_workers_have_health_checks(services: dict[str, dict[str, Any]]) -> None:
    for name in ("kafka", "registry", *WORKERS):
        check = services[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable", False)


def test_worker_health_check_asks_healthz_without_curl(services: dict[str, dict[str, Any]]) -> None:
    for name in WORKERS:
        test = services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], f"{name}: the image has python, not curl"
        assert "http://127.0.0.1:9100/healthz" in test[3]
        compile(test[3], f"{name} healthcheck", "exec")  # it is valid Python


def test_workers_run_supervised_after_init(services: dict[str, dict[str, Any]]) -> None:
    for name in WORKERS:
        svc = services[name]
        assert svc.get("restart") in ("unless-stopped", "always", "on-failure"), name
        assert svc["depends_on"]["init"]["condition"] == "service_completed_successfully", name
        assert svc["command"] == ["worker", name, "--instance", "0", "--metrics-port", "9100"]
        assert svc["environment"]["CHOREO_METRICS_HOST"] == "0.0.0.0"
        assert svc["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:19092"


def test_init_waits_for_a_healthy_stack_and_sets_up_the_saga(
    services: dict[str, dict[str, Any]],
) -> None:
    init = services["init"]
    for dependency in ("kafka", "registry"):
        assert init["depends_on"][dependency]["condition"] == "service_healthy"
    script = " ".join(init["command"])
    for step in ("choreo topics create", "choreo schemas register", "choreo seed"):
        assert step in script
    assert init.get("restart", "no") == "no"


def test_kafka_advertises_a_listener_the_containers_can_reach(
    services: dict[str, dict[str, Any]],
) -> None:
    env = services["kafka"]["environment"]
    advertised = env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "PLAINTEXT://127.0.0.1:9092" in advertised  # the host, as `choreo stack up`
    assert "DOCKER://kafka:19092" in advertised  # the compose network


def test_one_service_builds_the_choreo_image_and_none_pulls_it(
    services: dict[str, dict[str, Any]],
) -> None:
    builders = [name for name, svc in services.items() if "build" in svc]
    assert builders == ["init"], "one build of the image, shared by every service that runs it"
    image = services["init"]["image"]
    users = [name for name, svc in services.items() if svc["image"] == image]
    assert set(users) == {"init", *WORKERS}
    for name in users:
        # Never looked up in a registry: a missing image is built (by init, which the workers
        # depend on), not pulled from whoever owns that name there.
        assert services[name].get("pull_policy") == "never", name


def _is_root(user: Any) -> bool:
    name = str(user).split(":")[0]
    return name in ("root", "0")


def test_no_service_runs_as_root(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        assert not _is_root(svc.get("user", "")), f"{name} runs as root"
    assert _is_root("root") and _is_root(0) and _is_root("0:0") and not _is_root("1001")


def test_the_registry_keeps_its_database_in_the_image_data_folder(
    services: dict[str, dict[str, Any]],
) -> None:
    """As its own user the registry can write only to a volume on a folder its image has and
    gives to that user: /deployments/data (1001:0), which Docker copies owner and mode from."""
    registry = services["registry"]
    url = registry["environment"]["APICURIO_DATASOURCE_URL"]
    assert url.startswith("jdbc:h2:file:")
    database_dir = url.removeprefix("jdbc:h2:file:").rsplit("/", 1)[0]
    assert database_dir == "/deployments/data"
    mounts = [str(v).split(":") for v in registry["volumes"]]
    assert [m[1] for m in mounts if m[0] == "registry-data"] == [database_dir]


def _published(port: Any) -> tuple[str, str]:
    """(host ip, host port) of a compose port entry, short ("ip:host:container") or long form."""
    if isinstance(port, dict):
        return str(port.get("host_ip", "")), str(port.get("published", ""))
    parts = str(port).split(":")
    return (parts[0], parts[1]) if len(parts) == 3 else ("", parts[0])


def test_every_published_port_binds_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    published = []
    for name, svc in services.items():
        assert "network_mode" not in svc, f"{name}: host networking would bypass the port rules"
        for port in svc.get("ports", []):
            ip, host_port = _published(port)
            assert ip == "127.0.0.1", f"{name} publishes {port!r} beyond 127.0.0.1"
            published.append(host_port)
    assert len(published) == len(set(published)), "two services publish the same host port"


def test_the_port_check_catches_an_open_port() -> None:
    assert _published("9092:9092")[0] == ""
    assert _published("0.0.0.0:9092:9092")[0] == "0.0.0.0"
    assert _published({"target": 9092, "published": 9092})[0] == ""


# -- the Dockerfile ------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of every Dockerfile line, continuations joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_multi_stage() -> None:
    froms = [args for word, args in _instructions() if word == "FROM"]
    assert len(froms) == 2
    assert froms[0].endswith(" AS builder")
    copies = [args for word, args in _instructions() if word in ("COPY", "RUN")]
    # COPY --from=builder, or (as here) RUN --mount=type=bind,from=builder for the install only.
    assert any("from=builder" in args for args in copies), "the final stage takes the builder's wheels"
    assert any("pip wheel --no-deps" in args for args in copies)


def _bases() -> list[str]:
    """The image of each FROM, the global ARGs' defaults put in (other stages' names left out)."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    bases: list[str] = []
    for word, rest in _instructions():
        if word == "ARG" and not stages and not bases and "=" in rest:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip().strip('"')
        elif word == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], m[0]), parts[0])
            if len(parts) == 3 and parts[1].upper() == "AS":
                stages.add(parts[2])
            if image not in stages:
                bases.append(image)
    return bases


_DIGEST_PINNED = re.compile(r"^[\w.\-/]+:[\w.\-]+@sha256:[0-9a-f]{64}$")


def test_dockerfile_base_is_pinned_by_digest() -> None:
    bases = _bases()
    assert len(bases) == 2
    for base in bases:
        assert _DIGEST_PINNED.match(base), f"FROM {base}: pin the base as name:tag@sha256:<digest>"
        assert base.startswith("python:3.11-slim-bookworm@")
    assert not _DIGEST_PINNED.match("python:3.11-slim-bookworm")
    assert not _DIGEST_PINNED.match("python@sha256:" + "0" * 64)  # the tag says what it was
    assert "docker buildx imagetools inspect" in (ROOT / "Dockerfile").read_text()  # how to refresh


def _stage(name: str | None) -> list[tuple[str, str]]:
    """The instructions of the stage named `name` (None: the last, unnamed one)."""
    stages: list[list[tuple[str, str]]] = []
    for word, args in _instructions():
        if word == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word, args))
    for stage in stages:
        if (stage[0][1].split()[-1] == name) if name else len(stage[0][1].split()) == 1:
            return stage
    raise AssertionError(f"no stage {name}")


def test_dockerfile_builder_installs_the_pinned_versions() -> None:
    builder = _stage("builder")
    assert any(w == "COPY" and "constraints.txt" in a.split() for w, a in builder)
    wheel_steps = [a for w, a in builder if w == "RUN" and "pip wheel" in a]
    resolving = [step.split("&&") for step in wheel_steps]
    deps = [c for cmds in resolving for c in cmds if "pip wheel" in c and "--no-deps" not in c]
    assert deps, "the builder builds the dependencies' wheels"
    for command in deps:
        assert re.search(r"(--constraint|-c) constraints\.txt\b", command), command
    # The runtime installs only what the builder made: nothing unpinned can come in.
    runtime = _stage(None)
    installs = [a for w, a in runtime if w == "RUN" and "pip install" in a]
    assert installs and all("--no-index" in a for a in installs)
    # and the build context has constraints.txt (.dockerignore leaves it in).
    ignored = [e for e in (ROOT / ".dockerignore").read_text().split() if not e.startswith("#")]
    dropped = [p for p in ignored if fnmatch.fnmatch("constraints.txt", p)]
    assert not dropped, f".dockerignore drops constraints.txt: {dropped}"


def test_dockerfile_has_a_variant_with_the_extras() -> None:
    """One Dockerfile, one code path: the build arg EXTRAS (empty by default) adds choreo's
    extras, built with the constraints in the builder and installed in the runtime."""
    for stage in (_stage("builder"), _stage(None)):
        assert ("ARG", 'EXTRAS=""') in stage
        assert any(w == "RUN" and "${EXTRAS:+[${EXTRAS}]}" in a for w, a in stage)
    text = (ROOT / "Dockerfile").read_text()
    variant = re.search(r"docker build --build-arg EXTRAS=([\w,]+) -t (\S+) \.", text)
    assert variant, "the Dockerfile's header shows how to build the variant"
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    assert set(variant[1].split(",")) == {"ui", "otel"} <= extras
    assert variant[2].startswith("choreo:") and variant[2] != "choreo:0.1.0"


def test_dockerfile_runs_choreo_as_a_non_root_user() -> None:
    instructions = _instructions()
    users = [args for word, args in instructions if word == "USER"]
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    entrypoint = [args for word, args in instructions if word == "ENTRYPOINT"]
    assert entrypoint and shlex.split(entrypoint[-1].strip("[]").replace(",", " ")) == ["choreo"]
    assert any(word == "VOLUME" and "/var/lib/choreo/state" in args for word, args in instructions)
    assert any(word == "EXPOSE" and "9100" in args.split() for word, args in instructions)


def test_dockerignore_keeps_the_venv_and_state_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", ".git", ".stack", "state"):
        assert entry in ignored
