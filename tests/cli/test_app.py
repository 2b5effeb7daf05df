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
