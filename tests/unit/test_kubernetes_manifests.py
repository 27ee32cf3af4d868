"""deploy/kubernetes: the kustomize base and the example overlay, checked without a cluster.

Kustomize-free checks always run: every file a kustomization.yaml lists exists, every manifest
passes kubernetes-validate --strict (an unknown field fails) against a pinned Kubernetes version,
the StatefulSets follow the rules the worker needs (probes, grace period, replicas, scraping,
instance id from the pod name), there is a PodDisruptionBudget per service, and every patch of
the overlay applies to a resource of the base. Where `kubectl` (or `kustomize`) is installed the
base and overlay are also rendered and the result validated; without it those tests skip.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from choreo.settings import _ENV as SETTING_VARIABLES
from choreo.settings import Settings, load_settings
from consumers.domain import DOMAIN
from harness.paths import REPO

ROOT = REPO
K8S = ROOT / "deploy" / "kubernetes"
BASE = K8S / "base"
OVERLAY = K8S / "overlays" / "example"
# A version kubernetes-validate ships schemas for (pyproject.toml bounds the package to releases
# that carry it). Raise it together with that bound.
KUBERNETES_VERSION = "1.35.0"
SERVICES = [service.name for service in DOMAIN.services]
METRICS_PORT = 9100
# The worker honours SIGTERM within its watchdog's 30 s stop deadline; the pod must get that plus a batch.
MIN_GRACE_S = 60
# librdkafka settings the manifests may pass through as CHOREO_KAFKA_<NAME>.
KNOWN_LIBRDKAFKA = {
    "security.protocol", "sasl.mechanism", "sasl.mechanisms", "sasl.username", "sasl.password",
    "ssl.ca.location", "ssl.certificate.location", "ssl.key.location", "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
}


# -- reading kustomizations without kustomize ---------------------------------------------------


def _documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _kustomization(folder: Path) -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return found


def _resource_files(folder: Path) -> Iterator[Path]:
    """Every manifest file a kustomization pulls in, following folders to their kustomizations."""
    for entry in _kustomization(folder).get("resources", []):
        target = (folder / entry).resolve()
        assert target.exists(), f"{folder / 'kustomization.yaml'} lists {entry}, which does not exist"
        if target.is_dir():
            assert (target / "kustomization.yaml").exists(), f"{entry} has no kustomization.yaml"
            yield from _resource_files(target)
        else:
            yield target


def _resources(folder: Path) -> list[dict[str, Any]]:
    return [doc for path in _resource_files(folder) for doc in _documents(path)]


def _of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def _validate(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


# -- the rules for a worker's StatefulSet --------------------------------------------------------


def statefulset_problems(sts: dict[str, Any], partitions: int) -> list[str]:
    """What is wrong with a service's StatefulSet, as sentences (none: it is fine)."""
    problems = []
    name = sts["metadata"]["name"]
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    if spec.get("replicas", 1) > partitions:
        problems.append(f"{spec.get('replicas')} replicas for {partitions} partitions")
    if pod.get("terminationGracePeriodSeconds", 30) < MIN_GRACE_S:
        problems.append("terminationGracePeriodSeconds does not cover the worker's drain")
    if pod.get("enableServiceLinks", True):
        problems.append("service links would add stray variables (CHOREO_KAFKA_*) to the env")
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        problems.append("not runAsNonRoot")
    annotations = spec["template"]["metadata"].get("annotations", {})
    if annotations.get("prometheus.io/scrape") != "true" or annotations.get(
        "prometheus.io/port"
    ) != str(METRICS_PORT):
        problems.append("no Prometheus scrape annotations for the metrics port")
    [container] = pod["containers"]
    args = container.get("args", [])
    if args[:2] != ["worker", name] or args[2:4] != ["--instance", "$(POD_NAME)"]:
        problems.append(f"args {args} do not run `worker {name} --instance $(POD_NAME)`")
    if "--metrics-port" not in args or args[args.index("--metrics-port") + 1] != str(METRICS_PORT):
        problems.append("the worker does not serve its endpoints on the metrics port")
    env = {e["name"]: e for e in container.get("env", [])}
    if env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
        problems.append("POD_NAME does not come from metadata.name")
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container.get(probe, {}).get("httpGet", {})
        port = ports.get(get.get("port"), get.get("port"))
        if get.get("path") != path or port != METRICS_PORT:
            problems.append(f"{probe} does not ask {path} on port {METRICS_PORT}")
    liveness = container.get("livenessProbe", {})
    # A restore keeps /healthz at 200, but the endpoint opens only after the clients connect:
    # either a startup probe or a long enough initial delay must cover that.
    patience = liveness.get("periodSeconds", 10) * liveness.get("failureThreshold", 3)
    if patience < 60 or ("startupProbe" not in container and liveness.get("initialDelaySeconds", 0) < 60):
        problems.append("the liveness probe gives up too soon for a restore")
    resources = container.get("resources", {})
    if not resources.get("requests") or not resources.get("limits"):
        problems.append("no resource requests and limits")
    if not container.get("securityContext", {}).get("readOnlyRootFilesystem"):
        problems.append("the root filesystem is writable")
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    claims = {c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])}
    volumes = {v["name"] for v in pod.get("volumes", [])}
    state = mounts.get("/var/lib/choreo/state")
    if state is None or state not in claims | volumes:
        problems.append("no volume for the state folder")
    return problems


def _partitions(docs: list[dict[str, Any]]) -> int:
    data = _of_kind(docs, "ConfigMap")["choreo-config"]["data"]
    return int(data.get("CHOREO_PARTITIONS", Settings().partitions))


# -- the files as written --------------------------------------------------------------------------


@pytest.mark.parametrize("folder", [BASE, OVERLAY], ids=["base", "overlay"])
def test_every_listed_file_exists(folder: Path) -> None:
    kustomization = _kustomization(folder)
    assert kustomization["kind"] == "Kustomization"
    assert list(_resource_files(folder))
    for patch in kustomization.get("patches", []):
        assert (folder / patch["path"]).is_file(), f"patch {patch['path']} does not exist"


def test_every_manifest_is_valid_kubernetes() -> None:
    files = list(_resource_files(BASE))
    docs = [doc for path in files for doc in _documents(path)]
    for doc in docs:
        _validate(doc)
    # Strategic-merge patches of the overlay are manifests too (JSON patches are lists of ops).
    for patch in _kustomization(OVERLAY).get("patches", []):
        for doc in _documents(OVERLAY / patch["path"]):
            if isinstance(doc, dict):
                _validate(doc)
    # The same through the command line, as a person would run it.
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet",
         "-k", KUBERNETES_VERSION, *map(str, files)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_validation_fails_on_a_broken_manifest(tmp_path: Path) -> None:
    sts = copy.deepcopy(_of_kind(_resources(BASE), "StatefulSet")["orders"])
    sts["spec"]["replica"] = 3  # a typo: an unknown field
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(sts)
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(sts))
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", KUBERNETES_VERSION, str(broken)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "replica" in result.stdout + result.stderr


def test_every_service_is_a_statefulset_that_follows_the_rules() -> None:
    docs = _resources(BASE)
    statefulsets = _of_kind(docs, "StatefulSet")
    assert sorted(statefulsets) == sorted(SERVICES)
    for name, sts in statefulsets.items():
        assert statefulset_problems(sts, _partitions(docs)) == [], name
        assert sts["spec"]["serviceName"] in _of_kind(docs, "Service")


@pytest.mark.parametrize(
    "breakage, problem",
    [
        (lambda s: s["spec"].update(replicas=7), "7 replicas for 6 partitions"),
        (lambda s: s["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=30),
         "terminationGracePeriodSeconds"),
        (lambda s: s["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"].update(
            path="/healthz"), "readinessProbe"),
        (lambda s: s["spec"]["template"]["spec"]["containers"][0].pop("livenessProbe"), "livenessProbe"),
        (lambda s: s["spec"]["template"]["metadata"].pop("annotations"), "Prometheus"),
        (lambda s: s["spec"]["template"]["spec"]["containers"][0].update(
            args=["worker", "orders", "--instance", "0"]), "--instance $(POD_NAME)"),
    ],
)
def test_the_rules_catch_a_bad_statefulset(breakage: Any, problem: str) -> None:
    sts = copy.deepcopy(_of_kind(_resources(BASE), "StatefulSet")["orders"])
    breakage(sts)
    assert any(problem in p for p in statefulset_problems(sts, 6))


def test_a_disruption_budget_per_service() -> None:
    docs = _resources(BASE)
    budgets = _of_kind(docs, "PodDisruptionBudget")
    statefulsets = _of_kind(docs, "StatefulSet")
    for name in SERVICES:
        budget = budgets[name]["spec"]
        assert budget["maxUnavailable"] == 1
        assert budget["selector"] == statefulsets[name]["spec"]["selector"]


def test_the_setup_job_creates_topics_then_registers_schemas() -> None:
    job = _of_kind(_resources(BASE), "Job")["choreo-setup"]["spec"]["template"]["spec"]
    assert [c["args"] for c in job["initContainers"]] == [["topics", "create"]]
    assert [c["args"] for c in job["containers"]] == [["schemas", "register"]]
    assert job["restartPolicy"] in ("OnFailure", "Never")
    assert job["securityContext"]["runAsNonRoot"] is True


def _env_names(docs: list[dict[str, Any]]) -> set[str]:
    names = set()
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            names |= set(doc.get("data", {}))
        elif doc["kind"] in ("StatefulSet", "Job"):
            pod = doc["spec"]["template"]["spec"]
            for container in pod["containers"] + pod.get("initContainers", []):
                names |= {e["name"] for e in container.get("env", [])}
    return names - {"POD_NAME"}


def _overlay_patch_documents() -> list[Any]:
    patches = _kustomization(OVERLAY)["patches"]
    return [doc for patch in patches for doc in _documents(OVERLAY / patch["path"])]


def test_every_variable_is_a_setting_choreo_reads() -> None:
    docs = _resources(BASE)
    patch_docs = _overlay_patch_documents()
    names = _env_names(docs) | _env_names([d for d in patch_docs if isinstance(d, dict)])
    for op_list in (d for d in patch_docs if isinstance(d, list)):
        names |= {op["value"]["name"] for op in op_list if op["path"].endswith("/env/-")}
    for name in names:
        if name.startswith("CHOREO_KAFKA_"):
            extra = load_settings(env={name: "x"}).kafka_extra
            assert set(extra) <= KNOWN_LIBRDKAFKA, f"{name} is not a librdkafka setting we expect"
        else:
            assert name in SETTING_VARIABLES, f"{name} is not a setting"
    # The values are in range: load them the way a worker does.
    config = _of_kind(docs, "ConfigMap")["choreo-config"]["data"]
    settings = load_settings(env=config)
    assert settings.partitions == _partitions(docs)
    assert config["CHOREO_METRICS_HOST"] == "0.0.0.0" and settings.metrics_host == "0.0.0.0"
    assert {"CHOREO_KAFKA_SASL_USERNAME", "CHOREO_KAFKA_SASL_PASSWORD"} <= names


def _matches(doc: dict[str, Any], target: dict[str, Any]) -> bool:
    return all(
        doc.get(key) == value if key == "kind" else doc["metadata"].get(key) == value
        for key, value in target.items()
        if key in ("kind", "name", "namespace")
    )


def _pointer_exists(doc: Any, pointer: str) -> bool:
    for token in pointer.lstrip("/").split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, list) and token.isdigit() and int(token) < len(doc):
            doc = doc[int(token)]
        elif isinstance(doc, dict) and token in doc:
            doc = doc[token]
        else:
            return False
    return True


def test_the_overlay_patches_apply_to_the_base() -> None:
    base = _resources(BASE)
    kustomization = _kustomization(OVERLAY)
    for patch in kustomization["patches"]:
        body = _documents(OVERLAY / patch["path"])
        if "target" in patch:  # a JSON patch: one document, a list of operations
            targets = [doc for doc in base if _matches(doc, patch["target"])]
            assert targets, f"{patch['path']}: no resource of the base matches {patch['target']}"
            [ops] = body
            for doc in targets:
                for op in ops:
                    # add: the parent must exist (`-` appends to a list); else the path itself.
                    path = op["path"].rsplit("/", 1)[0] if op["op"] == "add" else op["path"]
                    assert _pointer_exists(doc, path), (
                        f"{patch['path']}: {op['path']} is not in {doc['kind']}/{doc['metadata']['name']}"
                    )
        else:  # a strategic-merge patch: one partial manifest, found by kind and name
            [doc] = body
            assert _of_kind(base, doc["kind"]).get(doc["metadata"]["name"]), (
                f"{patch['path']} patches {doc['kind']}/{doc['metadata']['name']}, not in the base"
            )


def test_the_overlay_scales_within_the_partitions() -> None:
    replicas = [
        op["value"]
        for patch in _kustomization(OVERLAY)["patches"]
        for doc in _documents(OVERLAY / patch["path"])
        if isinstance(doc, list)
        for op in doc
        if op["path"] == "/spec/replicas"
    ]
    assert replicas == [3]
    partitions = _partitions(_resources(BASE))
    assert all(1 <= r <= partitions for r in replicas)


# -- rendered by kustomize, where it is installed ---------------------------------------------------


def _render(folder: Path) -> list[dict[str, Any]]:
    if shutil.which("kustomize"):
        command = ["kustomize", "build", str(folder)]
    elif shutil.which("kubectl"):
        command = ["kubectl", "kustomize", str(folder)]
    else:
        pytest.skip("neither kustomize nor kubectl is installed: the kustomize-free checks stand")
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


@pytest.mark.parametrize("folder", [BASE, OVERLAY], ids=["base", "overlay"])
def test_rendered_manifests_are_valid_and_follow_the_rules(folder: Path) -> None:
    docs = _render(folder)
    for doc in docs:
        _validate(doc)
    statefulsets = _of_kind(docs, "StatefulSet")
    assert sorted(statefulsets) == sorted(SERVICES)
    assert sorted(_of_kind(docs, "PodDisruptionBudget")) == sorted(SERVICES)
    for name, sts in statefulsets.items():
        assert statefulset_problems(sts, _partitions(docs)) == [], name


def test_the_rendered_overlay_is_the_example_environment() -> None:
    docs = _render(OVERLAY)
    assert {doc["metadata"].get("namespace") for doc in docs} == {"choreo-example"}
    config = _of_kind(docs, "ConfigMap")["choreo-config"]["data"]
    assert config["CHOREO_TOPIC_PREFIX"] == "example."
    assert config["CHOREO_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    workloads = [*_of_kind(docs, "StatefulSet").values(), *_of_kind(docs, "Job").values()]
    for doc in workloads:
        pod = doc["spec"]["template"]["spec"]
        assert {"name": "kafka-ca", "secret": {"secretName": "choreo-kafka-ca"}} in pod["volumes"]
        for container in pod["containers"] + pod.get("initContainers", []):
            assert container["image"] == "registry.example.com/choreo:0.1.0"
            env = {e["name"]: e for e in container["env"]}
            secret = env["SCHEMA_REGISTRY_URL"]["valueFrom"]["secretKeyRef"]
            assert secret["name"] == "choreo-kafka-credentials"
            assert "/etc/choreo/kafka-ca" in {m["mountPath"] for m in container["volumeMounts"]}
    for sts in _of_kind(docs, "StatefulSet").values():
        assert sts["spec"]["replicas"] == 3
