"""deploy/helm/choreo: the chart, linted and rendered by a real helm and every object validated.

`helm lint` and `helm template` run for the default values and for each example values file in
the chart's ci/ folder. Every rendered object must be valid for its kind: built-in kinds
strictly against Kubernetes' own schemas, the ServiceMonitor, PrometheusRule and ScaledObject
against their CRDs (tests/support/kube_schemas.py). Then the rules a worker needs: the instance id
is the pod name, the probes, the drain time, replicas within the partitions, state volumes kept
on scale-down, settings choreo actually reads, a settings change rolling the pods, and the
monitoring objects carrying the very rules and dashboard the repository tests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from choreo.settings import _ENV as SETTING_VARIABLES
from choreo.settings import load_settings
from consumers.domain import DOMAIN
from harness.paths import REPO
from tests.support import kube_schemas

CHART = REPO / "deploy" / "helm" / "choreo"
EXAMPLES = sorted((CHART / "ci").glob("*-values.yaml"))
SERVICES = [service.name for service in DOMAIN.services]
METRICS_PORT = 9100
# The worker honours SIGTERM within its watchdog's 30 s stop deadline; the pod must get that plus a batch.
MIN_GRACE_S = 60
# librdkafka settings the chart may pass through as CHOREO_KAFKA_<NAME>.
KNOWN_LIBRDKAFKA = {
    "security.protocol", "sasl.mechanism", "sasl.mechanisms", "sasl.username", "sasl.password",
    "ssl.ca.location", "ssl.certificate.location", "ssl.key.location", "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
}


def _helm() -> str:
    found = shutil.which("helm", path=str(REPO / ".tools" / "bin")) or shutil.which("helm")
    assert found, "helm is not installed: `make tools` builds it into .tools/bin"
    return found


def _run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_helm(), *args], capture_output=True, text=True, timeout=120)


def _template(*values: Path, release: str = "choreo", **sets: str) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart; a `--set` per keyword, `__` standing for a dot."""
    args = ["template", release, str(CHART), "--namespace", "saga"]
    for path in values:
        args += ["-f", str(path)]
    for key, value in sets.items():
        args += ["--set", f"{key.replace('__', '.')}={value}"]
    return _run_helm(*args)


def render(*values: Path, release: str = "choreo", **sets: str) -> list[dict[str, Any]]:
    result = _template(*values, release=release, **sets)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


def render_error(**sets: str) -> str:
    result = _template(**sets)
    assert result.returncode != 0, "helm rendered what it should have refused"
    return result.stderr


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def _values_ids(path: Path | None) -> str:
    return "defaults" if path is None else path.stem


VALUES = [None, *EXAMPLES]


# -- helm itself ---------------------------------------------------------------------------------


@pytest.mark.parametrize("values", VALUES, ids=_values_ids)
def test_helm_lint_passes(values: Path | None) -> None:
    result = _run_helm("lint", "--strict", str(CHART), *(["-f", str(values)] if values else []))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", VALUES, ids=_values_ids)
def test_every_rendered_object_is_valid_for_its_kind(values: Path | None) -> None:
    docs = render(*([values] if values else []))
    assert docs
    for doc in docs:
        kube_schemas.validate(doc)


def test_the_examples_turn_on_every_optional_object() -> None:
    docs = [doc for values in EXAMPLES for doc in render(values)]
    assert {"ServiceMonitor", "PrometheusRule", "NetworkPolicy", "ScaledObject"} <= {d["kind"] for d in docs}
    assert "choreo-dashboard" in of_kind(docs, "ConfigMap")


@pytest.mark.parametrize(
    ("api_version", "kind", "spec", "field"),
    [
        ("apps/v1", "StatefulSet", {"replica": 3}, "replica"),
        ("monitoring.coreos.com/v1", "ServiceMonitor", {"endpoint": []}, "endpoint"),
        ("monitoring.coreos.com/v1", "PrometheusRule", {"groups": [{"name": "g", "rule": []}]}, "rule"),
        ("keda.sh/v1alpha1", "ScaledObject", {"scaleTargetRef": {"name": "x"}, "trigger": []}, "trigger"),
    ],
)
def test_validation_refuses_a_misspelt_field(
    api_version: str, kind: str, spec: dict[str, Any], field: str
) -> None:
    doc = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}, "spec": spec}
    with pytest.raises(Exception, match=field):
        kube_schemas.validate(doc)


# -- the rules of a worker -----------------------------------------------------------------------


def statefulset_problems(sts: dict[str, Any], service: str, partitions: int) -> list[str]:
    """What is wrong with a service's StatefulSet, as sentences (none: it is fine)."""
    problems = []
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
    [container] = pod["containers"]
    args = container.get("args", [])
    if args[:4] != ["worker", service, "--instance", "$(POD_NAME)"]:
        problems.append(f"args {args} do not run `worker {service} --instance $(POD_NAME)`")
    if "--metrics-port" not in args or args[args.index("--metrics-port") + 1] != str(METRICS_PORT):
        problems.append("the worker does not serve its endpoints on the metrics port")
    env = {e["name"]: e for e in container.get("env", [])}
    if env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
        problems.append("POD_NAME does not come from metadata.name")
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or ports.get(get.get("port"), get.get("port")) != METRICS_PORT:
            problems.append(f"{probe} does not ask {path} on port {METRICS_PORT}")
    liveness = container.get("livenessProbe", {})
    patience = liveness.get("periodSeconds", 10) * liveness.get("failureThreshold", 3)
    if patience < 60 or "startupProbe" not in container:
        problems.append("the liveness probe gives up too soon for a restore")
    if not container.get("resources", {}).get("requests"):
        problems.append("no resource requests")
    if not container.get("securityContext", {}).get("readOnlyRootFilesystem"):
        problems.append("the root filesystem is writable")
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    claims = {c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])}
    if mounts.get("/var/lib/choreo/state") not in claims:
        problems.append("no volume claim for the state folder")
    if spec.get("persistentVolumeClaimRetentionPolicy", {}).get("whenScaled") != "Retain":
        problems.append("a scale-down deletes the state volumes: scaling up again replays the topic")
    spread = pod.get("topologySpreadConstraints", [])
    if "kubernetes.io/hostname" not in {c["topologyKey"] for c in spread}:
        problems.append("the instances are not spread over nodes")
    return problems


@pytest.mark.parametrize("values", VALUES, ids=_values_ids)
def test_every_service_is_a_statefulset_that_follows_the_rules(values: Path | None) -> None:
    docs = render(*([values] if values else []))
    config = next(iter(of_kind(docs, "ConfigMap").values()))["data"]
    partitions = int(config["CHOREO_PARTITIONS"])
    statefulsets = of_kind(docs, "StatefulSet")
    assert sorted(statefulsets) == sorted(f"choreo-{s}" for s in SERVICES)
    assert sorted(of_kind(docs, "PodDisruptionBudget")) == sorted(statefulsets)
    for service in SERVICES:
        assert statefulset_problems(statefulsets[f"choreo-{service}"], service, partitions) == []


@pytest.mark.parametrize(
    ("breakage", "problem"),
    [
        (lambda s: s["spec"].update(replicas=7), "replicas for 6 partitions"),
        (lambda s: s["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=10), "drain"),
        (lambda s: s["spec"]["template"]["spec"]["containers"][0]["args"].__setitem__(3, "0"), "args"),
        (lambda s: s["spec"]["persistentVolumeClaimRetentionPolicy"].update(whenScaled="Delete"),
         "scale-down"),
        (lambda s: s["spec"]["template"]["spec"].pop("topologySpreadConstraints"), "spread"),
    ],
)
def test_the_rules_catch_a_bad_statefulset(breakage: Any, problem: str) -> None:
    sts = of_kind(render(), "StatefulSet")["choreo-orders"]
    breakage(sts)
    assert any(problem in p for p in statefulset_problems(sts, "orders", 6))


@pytest.mark.parametrize(
    ("sets", "sentence"),
    [
        ({"kafka__config__sasl\\.password": "x"},
         "kafka.config.sasl.password would put a secret in a ConfigMap"),
        ({"kafka__config__ssl\\.key\\.password": "x"}, "would put a secret in a ConfigMap"),
        ({"schemaRegistry__url": "https://u:p@registry/apis/ccompat/v7"},
         "schemaRegistry.url holds credentials"),
        ({"settings__CHOREO_PARTITIONS": "3"}, "settings.CHOREO_PARTITIONS is set by the chart"),
        ({"settings__CHOREO_KAFKA_SASL_PASSWORD": "x"}, "librdkafka settings go in kafka.config"),
    ],
)
def test_a_secret_in_the_config_map_or_a_setting_the_chart_owns_is_refused(
    sets: dict[str, str], sentence: str
) -> None:
    assert sentence in render_error(**sets)


def test_a_pod_that_is_not_ready_can_still_be_drained() -> None:
    # A held-back partition or a hanging transaction keeps a pod unready for as long as it lasts.
    for pdb in of_kind(render(), "PodDisruptionBudget").values():
        assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_more_replicas_than_partitions_is_refused_in_one_sentence() -> None:
    assert "7 replicas for 6 partitions" in render_error(worker__replicas="7")
    assert "keda.maxReplicas (8) is more than partitions (6)" in render_error(
        keda__enabled="true", keda__maxReplicas="8")


def _env_names(docs: list[dict[str, Any]]) -> set[str]:
    names = set()
    for doc in docs:
        if doc["kind"] == "ConfigMap" and not doc["metadata"]["name"].endswith("-dashboard"):
            names |= set(doc.get("data", {}))
        elif doc["kind"] in ("StatefulSet", "Job"):
            pod = doc["spec"]["template"]["spec"]
            for container in pod["containers"] + pod.get("initContainers", []):
                names |= {e["name"] for e in container.get("env", [])}
    return names - {"POD_NAME"}


@pytest.mark.parametrize("values", VALUES, ids=_values_ids)
def test_every_variable_is_a_setting_choreo_reads(values: Path | None) -> None:
    docs = render(*([values] if values else []))
    for name in _env_names(docs):
        if name.startswith("CHOREO_KAFKA_"):
            extra = load_settings(env={name: "x"}).kafka_extra
            assert set(extra) <= KNOWN_LIBRDKAFKA, f"{name} is not a librdkafka setting we expect"
        else:
            assert name in SETTING_VARIABLES, f"{name} is not a setting"
    # The values are in range: load them the way a worker does.
    config = next(iter(of_kind(docs, "ConfigMap").values()))["data"]
    settings = load_settings(env=config)
    assert settings.metrics_host == "0.0.0.0"
    assert settings.log_format == "json"


def test_the_production_example_wires_secrets_and_the_ca() -> None:
    [values] = [v for v in EXAMPLES if "production" in v.name]
    docs = render(values)
    config = of_kind(docs, "ConfigMap")["choreo-config"]["data"]
    assert config["CHOREO_TOPIC_PREFIX"] == "prod."
    assert config["CHOREO_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["CHOREO_KAFKA_SSL_CA_LOCATION"] == "/etc/choreo/kafka-ca/ca.crt"
    assert "SCHEMA_REGISTRY_URL" not in config  # it holds a password: from the Secret only
    for doc in [*of_kind(docs, "StatefulSet").values(), *of_kind(docs, "Job").values()]:
        pod = doc["spec"]["template"]["spec"]
        assert {"name": "kafka-ca", "secret": {"secretName": "choreo-kafka-ca"}} in pod["volumes"]
        for container in pod["containers"] + pod.get("initContainers", []):
            assert container["image"].startswith("registry.example.com/choreo@sha256:")
            env = {e["name"]: e for e in container["env"]}
            for name in ("SCHEMA_REGISTRY_URL", "CHOREO_KAFKA_SASL_USERNAME", "CHOREO_KAFKA_SASL_PASSWORD"):
                assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "choreo-kafka-credentials"
            assert "/etc/choreo/kafka-ca" in {m["mountPath"] for m in container["volumeMounts"]}
    replicas = {n: s["spec"]["replicas"] for n, s in of_kind(docs, "StatefulSet").items()}
    assert replicas == {"choreo-orders": 3, "choreo-packaging": 3, "choreo-drones": 4, "choreo-delivery": 3}


def test_a_settings_change_rolls_the_workers() -> None:
    def checksums(**sets: str) -> set[str]:
        sts = of_kind(render(**sets), "StatefulSet").values()
        return {s["spec"]["template"]["metadata"]["annotations"]["checksum/config"] for s in sts}

    before = checksums()
    assert len(before) == 1
    assert checksums(settings__CHOREO_STALL_S="90") != before
    assert checksums(kafka__bootstrapServers="other:9092") != before
    # The checksum is of the settings alone (other pod template changes roll the pods anyway).
    assert checksums(worker__podAnnotations__team="saga") == before


def test_the_setup_is_a_hook_that_creates_topics_then_registers_schemas() -> None:
    [job] = of_kind(render(), "Job").values()
    hooks = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
    assert hooks == {"pre-install", "pre-upgrade"}
    # GitOps tools see an expiring Job as drift: it is replaced at the next run instead.
    assert "ttlSecondsAfterFinished" not in job["spec"]
    pod = job["spec"]["template"]["spec"]
    assert [c["args"] for c in pod["initContainers"]] == [["topics", "create"]]
    assert [c["args"] for c in pod["containers"]] == [["schemas", "register"]]
    # It runs before the ConfigMap exists: the same settings, inline.
    config = of_kind(render(), "ConfigMap")["choreo-config"]["data"]
    for container in pod["containers"] + pod["initContainers"]:
        assert {e["name"]: e.get("value") for e in container["env"]} == config


# -- monitoring and scaling ----------------------------------------------------------------------


def test_the_prometheus_rule_carries_the_tested_rule_file() -> None:
    docs = render(prometheusRule__enabled="true", serviceMonitor__enabled="true")
    [rule] = of_kind(docs, "PrometheusRule").values()
    rules_file = yaml.safe_load((CHART / "files" / "choreo-alerts.yaml").read_text())
    assert rule["spec"] == rules_file
    [monitor] = of_kind(docs, "ServiceMonitor").values()
    # job="choreo", as the rules select; the workers' own `service` label kept.
    services = of_kind(docs, "Service").values()
    assert {s["metadata"]["labels"][monitor["spec"]["jobLabel"]] for s in services} == {"choreo"}
    assert all(e["honorLabels"] for e in monitor["spec"]["endpoints"])
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert all(selector.items() <= s["metadata"]["labels"].items() for s in services)


def test_the_dashboard_config_map_carries_the_dashboard() -> None:
    docs = render(grafanaDashboard__enabled="true")
    board = of_kind(docs, "ConfigMap")["choreo-dashboard"]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "files" / "grafana-dashboard.json").read_text())
    assert json.loads(board["data"]["choreo-workers.json"]) == shipped


def test_keda_scales_each_service_on_its_group_within_the_partitions() -> None:
    docs = render(keda__enabled="true", topicPrefix="prod.", partitions="4", keda__maxReplicas="4")
    scaled = of_kind(docs, "ScaledObject")
    assert sorted(scaled) == sorted(f"choreo-{s}" for s in SERVICES)
    for service in SERVICES:
        obj = scaled[f"choreo-{service}"]["spec"]
        target = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": f"choreo-{service}"}
        assert obj["scaleTargetRef"] == target
        assert obj["maxReplicaCount"] == 4
        [trigger] = obj["triggers"]
        meta = trigger["metadata"]
        assert meta["consumerGroup"] == load_settings(env={"CHOREO_TOPIC_PREFIX": "prod."}).group(service)
        # KEDA's kafka scaler refuses limitToPartitionsWithLag without a topic, and with
        # allowIdleConsumers: the ScaledObject would never make its HPA.
        assert "topic" in meta or meta.get("limitToPartitionsWithLag", "false") == "false"
        assert meta["allowIdleConsumers"] == "false"
        # cooldownPeriod only applies to scaling to zero: the slow scale-down is the HPA's.
        scale_down = obj["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
        assert scale_down["stabilizationWindowSeconds"] >= 300
        assert scale_down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 120}]
    # KEDA's HPA owns the replica count: the StatefulSets leave it out, or each upgrade would reset it.
    assert all("replicas" not in s["spec"] for s in of_kind(docs, "StatefulSet").values())


def test_a_release_of_another_name_keeps_its_objects_apart() -> None:
    docs = render(release="payments")
    assert sorted(of_kind(docs, "StatefulSet")) == sorted(f"payments-choreo-{s}" for s in SERVICES)
    sts = of_kind(docs, "StatefulSet")["payments-choreo-orders"]
    assert sts["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "payments"
