"""Total cost of ownership of a run: device-hours, dollars, energy and CO2.

Two price models (the scenario's `costs:` picks one):
- cloud: `usd_per_device_hour` (user-supplied) or the profile's
  `price.cloud_usd_per_hour` (sourced in the profile). Cloud prices include
  power, so electricity is not added again.
- purchase: `purchase_usd_per_device` (user-supplied) or the profile's
  `price.list_usd`, amortised linearly over `amortization_years`
  (8766 h a year), plus `hosting_usd_per_device_hour`, plus electricity.
Used when `purchase_usd_per_device` is given, or when the profile has a list
price but no cloud price.

Energy (unknown, NaN, where a profile has no TDP): devices x TDP x utilization_power_fraction x hours x PUE (the
facility overhead factor of The Green Grid's PUE definition), in kWh; CO2 =
kWh x grid intensity (kg CO2 per kWh). Every value is returned with its
source: the profile's `sources:` entry or "user-supplied (scenario costs.X)";
schema defaults are marked as such so a report never hides an assumption.

All functions are pure and accept NumPy arrays for `devices` and `duration_s`.
"""
from __future__ import annotations

import numpy as np

from simulator.schema.hardware import HardwareProfile
from simulator.schema.plan import PriceLine
from simulator.schema.scenario import Costs

HOURS_PER_YEAR = 8766.0   # 365.25 days


def _user(field: str, costs: Costs) -> str:
    if field in costs.model_fields_set:
        return f"user-supplied (scenario costs.{field})"
    return f"capplan default (costs.{field}; set it in the scenario)"


def price_model(profile: HardwareProfile, costs: Costs) -> dict:
    """Resolve the per-device-hour rate, its mode and its source for one profile.

    Returns {mode, usd_per_device_hour, source, electricity_billed}; the rate is
    None when neither the scenario nor the profile gives a price.
    """
    src = profile.sources
    if costs.purchase_usd_per_device is not None or (
            costs.usd_per_device_hour is None and profile.price.cloud_usd_per_hour is None
            and profile.price.list_usd is not None):
        if costs.purchase_usd_per_device is not None:
            price, psrc = costs.purchase_usd_per_device, _user("purchase_usd_per_device", costs)
        else:
            price = profile.price.list_usd
            psrc = f"profile {profile.name}: {src.get('price.list_usd', 'price.list_usd (no source given)')}"
        rate = price / (costs.amortization_years * HOURS_PER_YEAR) + costs.hosting_usd_per_device_hour
        source = (f"purchase {price:,.0f} USD [{psrc}] over {costs.amortization_years:g} years "
                  f"[{_user('amortization_years', costs)}] + hosting "
                  f"{costs.hosting_usd_per_device_hour:g} USD/h [{_user('hosting_usd_per_device_hour', costs)}]")
        if profile.power.tdp_w is None:
            source += "; electricity not included (the profile has no TDP)"
        return {"mode": "purchase", "usd_per_device_hour": rate, "source": source, "electricity_billed": True}
    if costs.usd_per_device_hour is not None:
        return {"mode": "cloud", "usd_per_device_hour": costs.usd_per_device_hour,
                "source": _user("usd_per_device_hour", costs), "electricity_billed": False}
    if profile.price.cloud_usd_per_hour is not None:
        return {"mode": "cloud", "usd_per_device_hour": profile.price.cloud_usd_per_hour,
                "source": f"profile {profile.name}: "
                          f"{src.get('price.cloud_usd_per_hour', 'price.cloud_usd_per_hour (no source given)')}",
                "electricity_billed": False}
    return {"mode": "none", "usd_per_device_hour": None,
            "source": f"no price: profile {profile.name} has none; set costs.usd_per_device_hour",
            "electricity_billed": False}


def power_kw(profile: HardwareProfile, costs: Costs, devices):
    """Average facility power while training: devices x TDP x utilization x PUE, in kW (NaN: no TDP)."""
    tdp = profile.power.tdp_w if profile.power.tdp_w is not None else np.nan
    return (np.asarray(devices, dtype=float) * tdp * costs.utilization_power_fraction
            * costs.power_usage_effectiveness / 1000.0)


def tco(profile: HardwareProfile, costs: Costs, devices, duration_s) -> dict:
    """Device-hours, USD, kWh, kg CO2 and facility kW for `devices` busy for `duration_s`.

    Arrays broadcast; `cost_usd` is NaN where no price is known.
    """
    devices = np.asarray(devices, dtype=float)
    hours = np.asarray(duration_s, dtype=float) / 3600.0
    device_hours = devices * hours
    kw = power_kw(profile, costs, devices)
    energy_kwh = kw * hours
    pm = price_model(profile, costs)
    rate = pm["usd_per_device_hour"]
    cost = device_hours * (rate if rate is not None else np.nan)
    if pm["electricity_billed"] and profile.power.tdp_w is not None:
        cost = cost + energy_kwh * costs.usd_per_kwh
    return {"device_hours": device_hours, "cost_usd": cost, "energy_kwh": energy_kwh,
            "co2_kg": energy_kwh * costs.grid_kg_co2_per_kwh, "power_kw": kw,
            "price_mode": pm["mode"], "price_source": pm["source"]}


def price_lines(profile: HardwareProfile, costs: Costs) -> list[PriceLine]:
    """The prices and factors behind a profile's TCO, each with its source, for the report."""
    pm = price_model(profile, costs)
    lines = []
    if pm["usd_per_device_hour"] is not None:
        lines.append(PriceLine(hardware=profile.name, item=f"{pm['mode']} rate", unit="USD/device-hour",
                               value=round(pm["usd_per_device_hour"], 4), source=pm["source"]))
    if profile.power.tdp_w is not None:
        lines.append(PriceLine(hardware=profile.name, item="TDP", value=profile.power.tdp_w, unit="W",
                               source=f"profile {profile.name}: {profile.sources.get('power.tdp_w', 'no source given')}"))
    else:
        lines.append(PriceLine(hardware=profile.name, item="TDP", value=0.0, unit="W",
                               source=f"unknown: profile {profile.name} publishes no TDP, so energy and CO2 "
                                      f"are not reported for it"))
    return lines


def shared_price_lines(costs: Costs) -> list[PriceLine]:
    """Factors common to every hardware: PUE, electricity price, grid intensity, power fraction."""
    items = [("power_usage_effectiveness", "PUE", ""), ("usd_per_kwh", "electricity", "USD/kWh"),
             ("grid_kg_co2_per_kwh", "grid intensity", "kg CO2/kWh"),
             ("utilization_power_fraction", "average draw / TDP", "")]
    return [PriceLine(item=label, value=getattr(costs, f), unit=unit, source=_user(f, costs))
            for f, label, unit in items]
