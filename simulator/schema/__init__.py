"""pydantic models only (frozen, extra='forbid'): hardware, scenario, results, calibration."""
