import numpy as np
import pytest

from simulator.hardware.load import load_hardware
from simulator.plan.tco import HOURS_PER_YEAR, price_lines, price_model, shared_price_lines, tco
from simulator.schema.scenario import Costs


@pytest.fixture
def a100():
    return load_hardware("a100-sxm4-80gb")


def test_cloud_rate_from_profile_with_its_source(a100):
    pm = price_model(a100, Costs())
    assert pm["mode"] == "cloud"
    assert pm["usd_per_device_hour"] == a100.price.cloud_usd_per_hour
    assert a100.name in pm["source"]
    t = tco(a100, Costs(), 8, 3600.0 * 10)
    assert t["device_hours"] == pytest.approx(80.0)
    assert t["cost_usd"] == pytest.approx(80.0 * a100.price.cloud_usd_per_hour)   # power included in cloud price


def test_user_rate_is_marked_user_supplied(a100):
    costs = Costs(usd_per_device_hour=1.5)
    pm = price_model(a100, costs)
    assert pm["usd_per_device_hour"] == 1.5 and "user-supplied" in pm["source"]


def test_purchase_amortization_hosting_and_electricity(a100):
    costs = Costs(purchase_usd_per_device=20000.0, amortization_years=4, hosting_usd_per_device_hour=0.5,
                  usd_per_kwh=0.2, power_usage_effectiveness=1.5, utilization_power_fraction=0.5,
                  grid_kg_co2_per_kwh=0.3)
    t = tco(a100, costs, 2, 7200.0)
    rate = 20000.0 / (4 * HOURS_PER_YEAR) + 0.5
    kwh = 2 * a100.power.tdp_w * 0.5 * 1.5 * 2.0 / 1000.0
    assert t["price_mode"] == "purchase"
    assert t["energy_kwh"] == pytest.approx(kwh)
    assert t["cost_usd"] == pytest.approx(2 * 2.0 * rate + kwh * 0.2)
    assert t["co2_kg"] == pytest.approx(kwh * 0.3)
    assert t["power_kw"] == pytest.approx(2 * a100.power.tdp_w * 0.5 * 1.5 / 1000.0)


def test_vectorized_over_candidates(a100):
    t = tco(a100, Costs(), np.array([1, 2, 4]), np.array([3600.0, 1800.0, 900.0]))
    assert np.allclose(t["device_hours"], [1.0, 1.0, 1.0])


def test_every_price_line_has_a_source(a100):
    lines = price_lines(a100, Costs()) + shared_price_lines(Costs(usd_per_kwh=0.2))
    assert all(line.source for line in lines)
    elec = next(x for x in lines if x.item == "electricity")
    assert "user-supplied" in elec.source
    pue = next(x for x in lines if x.item == "PUE")
    assert "default" in pue.source


def test_unknown_tdp_gives_unknown_energy_but_a_cloud_cost():
    tpu = load_hardware("tpu-v5e")
    assert tpu.power.tdp_w is None
    t = tco(tpu, Costs(), 4, 3600.0)
    assert np.isnan(t["energy_kwh"]) and np.isnan(t["co2_kg"])
    assert t["cost_usd"] == pytest.approx(4 * tpu.price.cloud_usd_per_hour)
    assert any("no TDP" in x.source for x in price_lines(tpu, Costs()))
