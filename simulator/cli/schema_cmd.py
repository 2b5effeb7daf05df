"""`capplan schema hardware|scenario`: JSON Schema of the file formats, for editors."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from simulator.errors import InputError


def schema_json(kind: str) -> dict:
    if kind == "hardware":
        from simulator.schema.hardware import HardwareProfile
        return HardwareProfile.model_json_schema()
    if kind == "scenario":
        from simulator.schema.scenario import Scenario
        return Scenario.model_json_schema()
    raise InputError(f"unknown schema '{kind}'", field="KIND", expected="hardware or scenario")


def register(app: typer.Typer) -> None:
    @app.command("schema")
    def schema(kind: str = typer.Argument(..., help="hardware | scenario"),
               out: Optional[Path] = typer.Option(None, "--out", "-o", help="write to this file instead of stdout")):
        """Write the JSON Schema of a capplan file format."""
        text = json.dumps(schema_json(kind), indent=2)
        if out:
            from simulator.report.files import write_text_atomic
            write_text_atomic(out, text + "\n", field="--out")
        else:
            typer.echo(text)
