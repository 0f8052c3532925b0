"""Which tests a run selects (tests/conftest.py): a plain run leaves the slow tests out; CI,
and a command that picks tests itself, keep every test it collected."""

from __future__ import annotations

from types import SimpleNamespace

import conftest
import pytest


class _Item:
    def __init__(self, name: str, slow: bool):
        self.name, self.slow = name, slow

    def get_closest_marker(self, name: str):
        return object() if name == "slow" and self.slow else None


def _select(monkeypatch, ci: str | None, markexpr: str = "", keyword: str = "",
            args: tuple[str, ...] = ("tests",)) -> tuple[list[str], list[str]]:
    """The names a run keeps and those it reports deselected."""
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    dropped: list[str] = []
    options = {"markexpr": markexpr, "keyword": keyword}
    config = SimpleNamespace(
        getoption=options.__getitem__, args=list(args),
        hook=SimpleNamespace(pytest_deselected=lambda items: dropped.extend(
            i.name for i in items)))
    items = [_Item("quick", False), _Item("slow", True), _Item("quick2", False)]
    conftest.pytest_collection_modifyitems(config, items)
    return [i.name for i in items], dropped


@pytest.mark.parametrize("ci", [None, "", "0", "false", "no"])
def test_a_plain_run_outside_ci_leaves_the_slow_tests_out_and_says_so(monkeypatch, ci):
    kept, dropped = _select(monkeypatch, ci)
    assert kept == ["quick", "quick2"] and dropped == ["slow"]
    assert "slow tests left out" in conftest.pytest_report_header(
        SimpleNamespace(getoption={"markexpr": "", "keyword": ""}.__getitem__, args=["tests"]))


@pytest.mark.parametrize("ci", ["true", "1", "yes", "True"])
def test_ci_runs_every_test(monkeypatch, ci):
    assert _select(monkeypatch, ci) == (["quick", "slow", "quick2"], [])


@pytest.mark.parametrize("picks", [{"markexpr": "slow"}, {"keyword": "bookings"},
                                   {"args": ("tests/test_kernel.py::test_x",)}])
def test_a_command_that_picks_tests_gets_the_slow_ones_it_picks(monkeypatch, picks):
    assert _select(monkeypatch, None, **picks) == (["quick", "slow", "quick2"], [])
