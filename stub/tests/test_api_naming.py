"""Plugin naming rules and protocol constants of nri.api."""

from __future__ import annotations

import pytest

from nri import api


@pytest.mark.parametrize("idx", ["00", "10", "99", "05"])
def test_valid_index(idx: str) -> None:
    assert api.validate_plugin_index(idx) == idx


@pytest.mark.parametrize("idx", ["", "1", "100", "ab", "1a", " 1", "١٢", "+1", "-1"])
def test_invalid_index(idx: str) -> None:
    with pytest.raises(api.InvalidPluginIndexError) as info:
        api.validate_plugin_index(idx)
    assert repr(idx) in str(info.value)
    assert info.value.idx == idx


@pytest.mark.parametrize("name", ["logger", "a", "A-b_c.d+e", "x-1", "device-injector"])
def test_valid_name(name: str) -> None:
    assert api.validate_plugin_name(name) == name


@pytest.mark.parametrize(
    ("name", "bad"),
    [("a b", "' '"), ("a/b", "'/'"), ("ünï", "'ü'"), ("tab\t", "'\\t'"), ("x:y", "':'")],
)
def test_invalid_name_names_the_character(name: str, bad: str) -> None:
    with pytest.raises(api.InvalidPluginNameError) as info:
        api.validate_plugin_name(name)
    assert bad in str(info.value)
    assert repr(name) in str(info.value)


def test_empty_name() -> None:
    with pytest.raises(api.InvalidPluginNameError, match="empty"):
        api.validate_plugin_name("")


@pytest.mark.parametrize(
    ("full", "want"),
    [("10-logger", ("10", "logger")), ("10-a-b", ("10", "a-b")), ("00-x", ("00", "x"))],
)
def test_parse_plugin_name(full: str, want: tuple[str, str]) -> None:
    assert api.parse_plugin_name(full) == want
    assert api.full_name(*want) == full


@pytest.mark.parametrize(
    ("full", "error"),
    [
        ("1-x", api.InvalidPluginIndexError),
        ("100-x", api.InvalidPluginIndexError),
        ("ab-x", api.InvalidPluginIndexError),
        ("10-", api.InvalidPluginNameError),
        ("10-a b", api.InvalidPluginNameError),
        ("logger", api.InvalidPluginNameError),
        ("10", api.InvalidPluginNameError),
        ("", api.InvalidPluginNameError),
    ],
)
def test_parse_plugin_name_errors(full: str, error: type[ValueError]) -> None:
    with pytest.raises(error):
        api.parse_plugin_name(full)


def test_parse_plugin_name_upstream_leniency() -> None:
    # upstream ParsePluginName checks only the index
    assert api.parse_plugin_name("10-", check_name=False) == ("10", "")
    assert api.parse_plugin_name("10-a b", check_name=False) == ("10", "a b")
    with pytest.raises(api.InvalidPluginIndexError):
        api.parse_plugin_name("1-x", check_name=False)


def test_parse_error_mentions_expected_form() -> None:
    with pytest.raises(api.InvalidPluginNameError, match="idx-pluginname expected"):
        api.parse_plugin_name("logger")


def test_full_name_validates() -> None:
    with pytest.raises(api.InvalidPluginIndexError):
        api.full_name("1", "x")
    with pytest.raises(api.InvalidPluginNameError):
        api.full_name("10", "")


def test_constants() -> None:
    assert api.DEFAULT_SOCKET_PATH == "/var/run/nri/nri.sock"
    assert api.DEFAULT_PLUGIN_PATH == "/opt/nri/plugins"
    assert api.DEFAULT_PLUGIN_CONFIG_PATH == "/etc/nri/conf.d"
    assert api.PLUGIN_NAME_ENV_VAR == "NRI_PLUGIN_NAME"
    assert api.PLUGIN_IDX_ENV_VAR == "NRI_PLUGIN_IDX"
    assert api.PLUGIN_SOCKET_ENV_VAR == "NRI_PLUGIN_SOCKET"
    assert api.DEFAULT_REGISTRATION_TIMEOUT == 5.0
    assert api.DEFAULT_REQUEST_TIMEOUT == 2.0
    assert api.NRI_VERSION == "v0.12.3"
