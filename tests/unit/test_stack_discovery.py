"""Which local stack a command acts on: `--dir`, CHOREO_STACK_DIR, `.stack` here, and else the
running stack `choreo stack up` last started; never that one for `up` or `down --purge`."""

from __future__ import annotations

from pathlib import Path

import pytest

from choreo.settings import Settings
from choreo.stack import discovery
from choreo.stack.info import StackInfo, save
from choreo.stack.layout import StackLayout


@pytest.fixture()
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stack started with --dir in another folder, remembered as the last started; the test
    runs in an empty folder (no .stack) with a cache of its own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CHOREO_STACK_DIR", raising=False)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    folder = tmp_path / "three"
    layout = StackLayout.of(folder)
    save(layout, _info(19092))
    discovery.remember_started(layout)
    return layout.state_dir


def _info(port: int) -> StackInfo:
    return StackInfo(brokers=1, kafka_ports=[port], controller_ports=[port + 1], registry_port=port + 2,
                     management_port=port + 3, cluster_id="test")


def _running(monkeypatch: pytest.MonkeyPatch, running: bool) -> None:
    monkeypatch.setattr(discovery, "running_components", lambda layout, info: ["kafka-1"] if running else [])


def test_a_running_stack_started_elsewhere_is_found_from_any_folder(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _running(monkeypatch, True)
    assert discovery.layout_for(Settings()).state_dir == elsewhere


def test_a_stopped_one_is_not_followed(elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _running(monkeypatch, False)
    assert discovery.layout_for(Settings()).state_dir == Path(".stack").resolve()


def test_up_and_purge_and_an_explicit_folder_never_follow_it(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _running(monkeypatch, True)
    assert discovery.layout_for(Settings(), follow_last=False).state_dir == Path(".stack").resolve()
    monkeypatch.setenv("CHOREO_STACK_DIR", ".stack")
    assert discovery.layout_for(Settings()).state_dir == Path(".stack").resolve()
    assert discovery.layout_for(Settings(), Path("mine")).state_dir == Path("mine").resolve()


def test_a_local_stack_here_wins(elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _running(monkeypatch, True)
    save(StackLayout.of(Path(".stack")), _info(29092))
    assert discovery.layout_for(Settings()).state_dir == Path(".stack").resolve()


def test_jars_are_in_the_users_cache(elsewhere: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "choreo" / "stack-jars"
    assert discovery.layout_for(Settings()).jars_dir == cache.resolve()
