"""Efficiency counting (mirrors lab/deploy/efficiency.py) and the proposed model's budget (paper Table 1)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lab import create_animator
from lab.deploy.efficiency import animator_costs, count_macs, efficiency_table


def test_count_macs_of_a_conv_is_exact():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    x = torch.rand(1, 3, 16, 16)
    assert count_macs(lambda: conv(x)) == 16 * 16 * 8 * 3 * 9


@pytest.fixture(scope="module")
def ultralight_costs():
    return {c.part: c for c in animator_costs(create_animator("ultralight"), latency=False)}


def test_ultralight_encoder_within_paper_budget(ultralight_costs):
    enc = ultralight_costs["encoder"]
    assert 0.144e6 <= enc.params <= 0.176e6  # 0.16 M +- 10 %
    assert 13.14e6 <= enc.macs <= 16.06e6  # 14.6 M MACs +- 10 %


def test_ultralight_decoder_within_paper_budget(ultralight_costs):
    dec = ultralight_costs["decoder"]
    assert 14.58e6 <= dec.params <= 17.82e6  # 16.2 M +- 10 %
    assert dec.macs <= 15.7e9  # 31.4 GFLOPs
    assert ultralight_costs["render"].macs < dec.macs  # cached source features save work per frame


def test_fomm_counts_match_the_spec_and_ratios():
    fomm = animator_costs(create_animator("fomm"), latency=False)
    by = {c.part: c for c in fomm}
    assert by["encoder"].params == 14_215_368 and by["decoder"].params == 45_575_391
    assert abs(by["encoder"].macs - 1.310e9) < 0.005e9  # FlopCounterMode, spec section 4
    assert abs(by["decoder"].macs - 53.677e9) < 0.05e9
    rows = efficiency_table(fomm, reference="fomm")
    assert all(r["macs_ratio"] == 1.0 for r in rows)


def test_static_costs_nothing():
    costs = animator_costs(create_animator("static"), latency=False)
    assert all(c.params == 0 and c.macs == 0 for c in costs)


def test_efficiency_cli_table(capsys):
    from lab.cli import main

    assert main(["efficiency", "--models", "static,ultralight", "--reference", "ultralight", "--no-latency"]) == 0
    out = capsys.readouterr().out
    assert "ultralight" in out and "encoder" in out and "14.60 M" in out
