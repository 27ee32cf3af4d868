"""Validating rendered Kubernetes objects without a cluster.

Built-in kinds go to kubernetes-validate (strict: an unknown field fails). The custom resources
the chart can render (the Prometheus Operator's ServiceMonitor and PrometheusRule, KEDA's
ScaledObject) are validated against their CRDs' own openAPIV3Schema, taken from the projects'
Go modules at pinned versions (`go mod download`, cached after the first time) and made strict
the same way: an object schema that lists its properties refuses any other.
"""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

# A version kubernetes-validate ships schemas for (pyproject.toml bounds the package to releases
# that carry it). Raise it together with that bound.
KUBERNETES_VERSION = "1.35.0"

# (apiVersion, kind) -> (Go module@version, the CRD's file in it).
CRDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): (
        "github.com/prometheus-operator/prometheus-operator@v0.85.0",
        "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
    ),
    ("monitoring.coreos.com/v1", "PrometheusRule"): (
        "github.com/prometheus-operator/prometheus-operator@v0.85.0",
        "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
    ),
    ("keda.sh/v1alpha1", "ScaledObject"): (
        "github.com/kedacore/keda/v2@v2.17.2",
        "config/crd/bases/keda.sh_scaledobjects.yaml",
    ),
}


def validate(doc: dict[str, Any]) -> None:
    """Raise if `doc` is not a valid object of its kind (a built-in one or a known CRD's)."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in CRDS:
        jsonschema.Draft7Validator(crd_schema(*key)).validate(doc)
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    module, path = CRDS[(api_version, kind)]
    crd = yaml.safe_load((_module_dir(module) / path).read_text())
    group = crd["spec"]["group"]
    for version in crd["spec"]["versions"]:
        if f"{group}/{version['name']}" == api_version:
            schema = _strict(version["schema"]["openAPIV3Schema"])
            # The API server adds these to every object; the CRD's schema leaves them open.
            schema["properties"]["metadata"] = {"type": "object"}
            schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
            return schema
    raise LookupError(f"{path} has no version {api_version}")


def _strict(schema: Any) -> Any:
    """The schema with `additionalProperties: false` wherever an object lists its properties and
    does not say that it keeps unknown fields, so that a misspelt field fails."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    pattern = out.get("pattern")
    if isinstance(pattern, str) and "(?i)" in pattern:
        # Go's regexp takes a flag anywhere; Python's only at the start.
        out["pattern"] = "(?i)" + pattern.replace("(?i)", "")
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def _module_dir(module: str) -> Path:
    """The module's folder in Go's module cache, downloaded through the Go proxy the first time."""
    try:
        result = subprocess.run(
            ["go", "mod", "download", "-json", module],
            capture_output=True, text=True, timeout=600,
            env=_go_env(),
        )
    except FileNotFoundError:
        raise AssertionError("the CRD schemas come from Go modules: install Go") from None
    found = json.loads(result.stdout or "{}")
    if result.returncode != 0 or "Dir" not in found:
        raise AssertionError(f"go mod download {module} failed: {found.get('Error') or result.stderr}")
    return Path(found["Dir"])


def _go_env() -> dict[str, str]:
    # Outside any module, and with the local toolchain: nothing here needs a newer Go.
    return {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
