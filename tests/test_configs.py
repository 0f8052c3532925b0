"""Every config shipped in configs/ loads and runs, and configs/b2b_saas.toml is the embedded
default, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

import gtmsim

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FILES = sorted(CONFIGS.glob("*.toml"))


def test_there_are_example_configs():
    names = {p.name for p in FILES}
    assert {"b2b_saas.toml", "product_led.toml", "enterprise_partners.toml"} <= names


def test_default_copy_matches_embedded():
    embedded = Path(gtmsim.__file__).parent / "config" / "b2b_saas.toml"
    assert (CONFIGS / "b2b_saas.toml").read_bytes() == embedded.read_bytes()


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_config_loads_and_runs(path):
    cfg = gtmsim.load_config(str(path))
    assert cfg.channels and cfg.stages
    res = gtmsim.run(str(path), replications=2,
                     overrides=["run.horizon_days=60", "run.warmup_days=14"])
    reps = res.replications
    assert reps.height == 2
    assert (reps["leads_created"] > 0).all()
    assert res.summary().height > 0
