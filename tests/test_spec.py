"""Config -> spec: flat numbers, mechanisms folded to neutral values when off."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gtmsim.config import load_config
from gtmsim.errors import ConfigError
from gtmsim.spec import NO_ROUTE, compile_spec


def test_ideal_spec_is_neutral():
    s = compile_spec(load_config(profile="ideal"))
    assert s.latency_median == 0 and s.noise_sd == 0 and s.forget_p == 0
    assert s.availability_mean == pytest.approx(1.0 - 4.0 / (8 * 5 * 52 / 12))  # enablement
    assert s.compliance_p == 1.0 and s.trust_initial == 1.0 and s.attrition_rate == 0


def test_routes_and_edges():
    s = compile_spec(load_config())
    names = list(s.stage_names)
    mql, sdr = names.index("mql_review"), names.index("sdr_qualify")
    assert s.route[mql, 0] == sdr
    assert s.edge_of[mql, sdr] >= 0
    assert s.edge_names[s.edge_of[mql, sdr]] == "mql_review->sdr_qualify"
    # a review stage has no buyer outcomes
    assert s.route[mql, 4] == NO_ROUTE


def test_scenario_overrides_uncertain_values():
    c = load_config()
    assert compile_spec(c, {"people.forgetting.probability": 0.07}).forget_p == 0.07


def test_nan_in_spec_is_caught():
    s = compile_spec(load_config())
    bad = dataclasses.replace(s, stage_threshold=np.array([np.nan] * s.n_stages))
    with pytest.raises(ConfigError, match="stage_threshold"):
        bad.check()
    with pytest.raises(ConfigError, match="forget_p"):
        dataclasses.replace(s, forget_p=1.5).check()
