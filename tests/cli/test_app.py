def test_help_lists_commands(cli):
    r = cli("--help")
    assert r.code == 0
    assert "schema" in r.out


def test_schema_scenario_is_json(cli):
    import json
    r = cli("schema", "scenario")
    assert r.code == 0
    schema = json.loads(r.out)
    assert "workload" in schema["properties"]


def test_unknown_schema_is_exit_2(cli):
    r = cli("schema", "nonsense")
    assert r.code == 2
    assert "unknown schema" in r.err and "Traceback" not in r.err


def test_exit_codes_from_commands_reach_the_caller(monkeypatch):
    import typer

    from simulator.cli import app as app_module

    def fake_build_app():
        app = typer.Typer()

        @app.command()
        def boom():
            raise typer.Exit(3)

        @app.command()
        def fine():
            pass
        return app

    monkeypatch.setattr(app_module, "build_app", fake_build_app)
    assert app_module.main(["boom"]) == 3
    assert app_module.main(["fine"]) == 0


def test_version(cli):
    r = cli("--version")
    assert r.code == 0 and "capplan" in r.out


def test_usage_errors_are_exit_2_not_internal(cli):
    for args in (("simulate",), ("simulate", "x.yaml", "--bogus"), ("no-such-command",)):
        r = cli(*args)
        assert r.code == 2, (args, r)
        assert "internal error" not in r.err and r.err.startswith("error:")
