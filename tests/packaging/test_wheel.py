"""The wheel is the product: installed alone in a fresh venv, far from the checkout, it runs the saga.

`choreo stack up --dir` starts a stack of this test's own (own folder, own free ports) from the
jars already fetched into the user's jar cache; `choreo demo`, run from another folder with
nothing set, finds that stack and runs the whole saga on it and audits the log. Schemas and
stack templates can only come from the wheel: the commands run in a temp folder with the
session's settings cleared.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from choreo.stack.ports import free_ports
from harness.paths import stack_jars
from tests.support.wheel_venv import REPO_ROOT, WheelVenv, said

pytestmark = pytest.mark.e2e

ORDERS = 30


def test_the_wheels_carry_the_schemas_and_the_stack_templates(wheel_venv: WheelVenv) -> None:
    names = set(zipfile.ZipFile(wheel_venv.wheel).namelist())
    for template in ("pom.xml", "server.properties", "log4j2.properties", "log4j2-tools.properties"):
        assert f"choreo/stack/templates/{template}" in names
    assert "choreo/py.typed" in names  # a plug-in's mypy reads choreo's types
    assert "choreo/schemas/TimerFired.avsc" in names
    # The framework carries no saga: the drone saga is the other wheel.
    assert not {n for n in names if n.split("/")[0] in ("consumers", "producers")}
    reference = set(zipfile.ZipFile(wheel_venv.reference_wheel).namelist())
    root = REPO_ROOT / "schemas"
    schemas = {p.relative_to(root).as_posix() for p in root.rglob("*.avsc")}
    assert schemas and {f"consumers/schemas/{s}" for s in schemas} <= reference
    assert {"consumers/reference/hubs.json", "producers/cli.py"} <= reference
    assert not {n for n in reference if n.startswith("choreo/")}


def test_the_framework_alone_runs_no_services(wheel_venv: WheelVenv, tmp_path: Path) -> None:
    wheel_venv.pip("uninstall", "-q", "-y", "choreo-drone-delivery")
    try:
        env = wheel_venv.env()
        shown = wheel_venv.choreo("--help", cwd=tmp_path, env=env, timeout=60)
        assert shown.returncode == 0, said(shown)
        assert " stack " in shown.stdout and " order " not in shown.stdout, said(shown)
        assert "no services are installed" in shown.stderr, said(shown)
        run = wheel_venv.choreo("run", cwd=tmp_path, env=env, timeout=60)
        assert run.returncode != 0 and "no services are installed" in run.stderr, said(run)
    finally:
        wheel_venv.pip("install", "-q", "--no-deps", str(wheel_venv.reference_wheel))
    listed = wheel_venv.choreo("graph", "--check", cwd=tmp_path, env=wheel_venv.env(), timeout=60)
    assert listed.returncode == 0 and "4 service(s)" in listed.stdout + listed.stderr, said(listed)


def test_schemas_check_outside_a_checkout_says_why_in_one_sentence(
    wheel_venv: WheelVenv, tmp_path: Path
) -> None:
    result = wheel_venv.choreo("schemas", "check", cwd=tmp_path, env=wheel_venv.env())
    assert result.returncode == 1, said(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), said(result)
    assert "not in a git repository" in lines[0] and "--repo" in lines[0]
    assert "earlier version(s) checked" not in result.stdout + result.stderr


def test_the_wheel_without_its_ui_extra_says_what_to_install_for_choreo_ui(
    wheel_venv: WheelVenv, tmp_path: Path
) -> None:
    assert "choreo/ui/app.py" in zipfile.ZipFile(wheel_venv.wheel).namelist()
    result = wheel_venv.choreo("ui", cwd=tmp_path, env=wheel_venv.env(), timeout=60)
    assert result.returncode == 1, said(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'choreo[ui]'" in lines[0], said(result)


def test_the_installed_wheel_runs_the_demo_on_a_stack_of_its_own(
    wheel_venv: WheelVenv, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    stack_dir = tmp_path / "stack"
    jars = str(stack_jars())  # fetched by `make jars`
    # The jars from their cache; the "last started stack" this test leaves in a cache of its own.
    env = wheel_venv.env(CHOREO_JARS_DIR=jars, XDG_CACHE_HOME=str(tmp_path / "cache"))

    shown = wheel_venv.choreo("--help", cwd=elsewhere, env=env, timeout=60)
    assert shown.returncode == 0, said(shown)
    for command in ("stack", "worker", "run", "demo", "audit", "schemas"):
        assert f" {command} " in shown.stdout, command

    kafka_port, registry_port = free_ports(2)
    try:
        up = wheel_venv.choreo(
            "stack", "up", "--dir", str(stack_dir),
            "--kafka-port", str(kafka_port), "--registry-port", str(registry_port),
            cwd=elsewhere, env=env, timeout=300,
        )
        assert up.returncode == 0, said(up)
        assert f"127.0.0.1:{kafka_port}" in up.stdout, said(up)

        # The demo finds the stack started with --dir from another folder, with nothing set.
        demo = wheel_venv.choreo(
            "demo", "--orders", str(ORDERS), "--rate", "30", cwd=elsewhere, env=env, timeout=600,
        )
        log = elsewhere / "demo-workers.log"
        detail = said(demo) + (f"\n--- workers\n{log.read_text()[-4000:]}" if log.exists() else "")
        assert demo.returncode == 0, detail
        assert f"{ORDERS} of {ORDERS} sagas ended" in demo.stdout, detail
        assert "Audit of" in demo.stdout and "VIOLATED" not in demo.stdout, detail
    finally:
        wheel_venv.choreo("stack", "down", cwd=elsewhere, env=env, timeout=180)
