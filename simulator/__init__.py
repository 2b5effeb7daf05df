"""capplan: compute-efficiency simulator and capacity planner for deep learning.

Public Python API (imported lazily so `import simulator` stays cheap):
load_model, load_hardware, load_scenario, simulate, serve, plan.
"""
from __future__ import annotations

__version__ = "0.1.0"

_API = {
    "load_model": "simulator.graph.build",
    "load_hardware": "simulator.hardware.load",
    "load_scenario": "simulator.loading",
    "simulate": "simulator.sim.api",
    "serve": "simulator.serving.api",
    "plan": "simulator.plan.api",
}

__all__ = list(_API) + ["__version__"]


def __getattr__(name: str):
    if name in _API:
        import importlib
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(name)
