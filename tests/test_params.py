"""Parameters are parsed by declared type and checked before any kernel starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from opsbook.cli import EXIT_BAD_INPUT, app
from opsbook.engine import run as engine_run
from opsbook.engine.catalog import find_runbook
from opsbook.engine.params import Parameter, coerce, parse_parameters
from opsbook.errors import BadInput, UnknownParameter

INVENTORY = find_runbook("cluster-inventory")


def P(name: str, type_: str, default: object = None, help_: str = "") -> Parameter:
    from opsbook.engine.params import parameter_from_inspection

    return parameter_from_inspection(
        {"name": name, "inferred_type_name": type_, "default": repr(default), "help": help_}
    )


DECLARED = [
    P("dry_run", "bool", True, "only show what would change"),
    P("count", "int", 1, "consecutive passes [1..10]"),
    P("ratio", "float", 0.5, "fraction [0..1]"),
    P("zones", "list[str]", ["a"], "zones"),
    P("severity", "str", "high", "threshold {low|medium|high}"),
    P("start", "str", "", "window start <datetime>"),
    P("name", "str", "x", "name"),
]


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("dry_run", "false", False),
        ("dry_run", "False", False),
        ("dry_run", "no", False),
        ("dry_run", "0", False),
        ("dry_run", "true", True),
        ("dry_run", "yes", True),
        ("count", "3", 3),
        ("count", 10, 10),
        ("ratio", "0.25", 0.25),
        ("zones", "eu-central-1a,eu-central-1b", ["eu-central-1a", "eu-central-1b"]),
        ("zones", '["a", "b"]', ["a", "b"]),
        ("severity", "medium", "medium"),
        ("start", "2026-11-25T00:10:00Z", "2026-11-25T00:10:00Z"),
        ("start", "", ""),
    ],
)
def test_values_are_parsed_by_declared_type(name: str, raw: object, expected: object) -> None:
    assert parse_parameters(DECLARED, {name: raw}) == {name: expected}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"dry_run": "maybe"}, "expected true or false"),
        ({"count": "three"}, "not valid"),
        ({"count": "2.5"}, "not valid"),
        ({"count": "0"}, "below the minimum 1"),
        ({"count": "11"}, "above the maximum 10"),
        ({"ratio": "1.5"}, "above the maximum 1"),
        ({"ratio": "nan"}, "finite"),
        ({"severity": "urgent"}, "choose one of low, medium, high"),
        ({"start": "yesterday"}, "ISO-8601"),
        ({"zones": "[1, 2"}, "not valid"),
        ({"api_token": "x"}, "no parameter"),
        ({"name": "AKIAIOSFODNN7EXAMPLE"}, "looks like a secret"),
        (
            {
                "name": "-----BEGIN RSA PRIVATE KEY-----\n"
                "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n"
            },
            "looks like a secret",
        ),
    ],
)
def test_bad_values_are_rejected_with_a_clear_message(raw: dict[str, object], message: str) -> None:
    with pytest.raises(BadInput) as e:
        parse_parameters(DECLARED, raw, "demo")
    assert message in str(e.value)


def test_unknown_parameter_suggests_the_close_one() -> None:
    with pytest.raises(UnknownParameter, match="did you mean 'dry_run'"):
        parse_parameters(DECLARED, {"dryrun": "false"}, "demo")


def test_secret_looking_names_are_refused_even_if_declared() -> None:
    declared = [P("password", "str", "", "do not do this")]
    with pytest.raises(BadInput, match="looks like a secret"):
        parse_parameters(declared, {"password": "hunter2hunter2"})


def test_required_parameter_must_be_given() -> None:
    declared = [P("cluster", "str", None, "cluster name")]
    with pytest.raises(BadInput, match="needs cluster"):
        parse_parameters(declared, {})


def test_runbook_parameters_come_from_the_notebook() -> None:
    by_name = {p.name: p for p in INVENTORY.parameters}
    assert by_name["max_age_days"].type == "int"
    assert (by_name["max_age_days"].minimum, by_name["max_age_days"].maximum) == (1, 36500)
    assert by_name["not_joined_severity"].choices == ("low", "medium", "high", "critical")


# --- through the CLI: exit code 2, clear message, and no kernel is ever started ---------------------


@pytest.fixture
def no_kernel(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    started: list[str] = []

    class Refuse:
        def __init__(self, *a: object, **k: object) -> None:
            started.append("kernel")
            raise AssertionError("a kernel was started for bad input")

    monkeypatch.setattr(engine_run, "NotebookClient", Refuse)
    return started


CLI_CASES = [
    (["-p", "max_age_days=abc"], "max_age_days"),
    (["-p", "max_age_days=0"], "below the minimum"),
    (["-p", "not_joined_severity=urgent"], "choose one of"),
    (["-p", "colour=red"], "has no parameter 'colour'"),
    (["-p", "region"], "NAME=VALUE"),
    (["--fail-on", "sometimes"], "--fail-on"),
    (["-p", "cluster_name=AKIAIOSFODNN7EXAMPLE"], "looks like a secret"),
]


@pytest.mark.parametrize(("args", "message"), CLI_CASES)
def test_cli_bad_input_exits_2_before_any_kernel(
    args: list[str], message: str, no_kernel: list[str], tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["run", "cluster-inventory", *args, "--output", str(tmp_path)])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert message in " ".join(result.output.split())
    assert no_kernel == []
    assert not any(tmp_path.iterdir())


def test_cli_unknown_runbook_lists_known_ones(no_kernel: list[str]) -> None:
    result = CliRunner().invoke(app, ["run", "validate-clustr"])
    assert result.exit_code == EXIT_BAD_INPUT
    assert "cluster-inventory" in result.output


def test_cli_bad_params_file(no_kernel: list[str], tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("- just\n- a list\n")
    result = CliRunner().invoke(app, ["run", "cluster-inventory", "-f", str(f)])
    assert result.exit_code == EXIT_BAD_INPUT
    assert "YAML mapping" in result.output


names = st.sampled_from([p.name for p in INVENTORY.parameters])
junk = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(names, st.from_regex(r"[a-z_]{1,12}", fullmatch=True)), value=junk)
def test_property_any_input_is_accepted_typed_or_rejected_cleanly(name: str, value: str) -> None:
    """Whatever the input, parsing either returns a value of the declared type or raises BadInput."""
    try:
        parsed = parse_parameters(INVENTORY.parameters, {name: value}, INVENTORY.name)
    except BadInput as e:
        assert str(e) and "Traceback" not in str(e)
        return
    param = INVENTORY.parameter(name)
    assert param is not None
    expected_type = {"int": int, "str": str, "float": float, "bool": bool}[param.type]
    assert isinstance(parsed[name], expected_type)
    if param.choices:
        assert parsed[name] in param.choices
    if param.minimum is not None:
        assert parsed[name] >= param.minimum


@given(st.integers())
def test_property_int_range_is_enforced(n: int) -> None:
    p = INVENTORY.parameter("max_age_days")
    assert p is not None
    if 1 <= n <= 36500:
        assert coerce(p, str(n)) == n
    else:
        with pytest.raises(BadInput):
            coerce(p, str(n))
