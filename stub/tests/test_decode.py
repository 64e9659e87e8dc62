"""nri.decode: bounded YAML/JSON loading and upstream's Go value typing."""

from __future__ import annotations

import json
import math
import struct
import time
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nri.decode import (
    ANNOTATION_MAX_BYTES,
    Bool,
    DecodeError,
    Float,
    Int,
    Map,
    Ptr,
    Raw,
    Slice,
    Str,
    Struct,
    from_json,
    from_yaml,
    go_float_string,
    load_json,
    load_yaml,
    unmarshal_json,
    unmarshal_yaml,
)

# -- YAML scalars as go.yaml.in/yaml/v2 resolves them ---------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("~", None),
        ("null", None),
        ("NULL", None),
        ("", None),
        ("yes", True),
        ("On", True),
        ("y", True),
        ("TRUE", True),
        ("no", False),
        ("off", False),
        ("N", False),
        ("1024", 1024),
        ("-12", -12),
        ("+12", 12),
        ("1_000", 1000),
        ("0x1F", 31),
        ("0b101", 5),
        ("-0b101", -5),
        ("0o666", 438),
        ("0666", 438),
        ("08", 8.0),  # invalid octal, then Go's float syntax accepts it
        ("1024.0", 1024.0),
        ("2e3", 2000.0),
        (".5", 0.5),
        ("-1.5E-3", -0.0015),
        ("1e400", "1e400"),  # overflowing float: a string, as ParseFloat fails
        (".inf", math.inf),
        ("-.Inf", -math.inf),
        (str(2**64 - 1), 2**64 - 1),
        (str(2**64), float(2**64)),
        ("+" + str(2**64 - 1), float(2**64 - 1)),  # ParseUint takes no sign
        ("-" + str(2**63), -(2**63)),
        ("0x1ffffffffffffffff", "0x1ffffffffffffffff"),
        ("1:30", "1:30"),  # no sexagesimal numbers
        ("2001-12-14", "2001-12-14"),  # timestamps stay strings
        ("inf", "inf"),
        ("NaN", "NaN"),
        ("0x", "0x"),
        ("._5", "._5"),
        ("yes please", "yes please"),
        ("'123'", "123"),
        ('"yes"', "yes"),
        ("!!str 1", "1"),
        ("!!float 1", 1.0),
        ("!!int 0x10", 16),
        ("!!bool on", True),
        ("!!null ~", None),
        ("!custom 12", "12"),
        ("! 12", "12"),
        ("!!binary aGVsbG8=", "hello"),
        ("|\n  12\n", "12\n"),
    ],
)
def test_scalars(text: str, expected: Any) -> None:
    value = load_yaml(text, source="s")
    assert value == expected and type(value) is type(expected)


def test_nan() -> None:
    assert math.isnan(load_yaml(".NaN", source="s"))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("!!int abc", "cannot decode !!str `abc` as a !!int"),
        ("!!bool 1", "cannot decode !!int `1` as a !!bool"),
        ("!!null x", "cannot decode !!str `x` as a !!null"),
        ("!!binary 'a$b'", "!!binary value is not base64"),
    ],
)
def test_tag_mismatch(text: str, problem: str) -> None:
    with pytest.raises(DecodeError, match=problem):
        load_yaml(text, source="s")


def test_keys_become_strings_like_sigs_yaml() -> None:
    text = "1: a\ntrue: b\non: c\n1.5: d\n.inf: e\n-0x10: f\n"
    assert load_yaml(text, source="s") == {
        "1": "a",
        "true": "c",  # "true" and "on" are the same key; the last wins
        "1.5": "d",
        ".inf": "e",
        "-16": "f",
    }
    for text, problem in (
        ("~: a", "unsupported map key null"),
        (f"{2**63}: a", "out of int64 range"),
        ("? [a]\n: b", "unsupported map key"),
        ("{? {a: 1} : b}", "unsupported map key"),
    ):
        with pytest.raises(DecodeError, match=problem):
            load_yaml(text, source="s")


def test_merge_keys_and_anchors() -> None:
    text = (
        "base: &base {a: 1, b: 1}\n"
        "first: {<<: *base, b: 2}\n"
        "later: {b: 2, <<: *base}\n"  # a merge overrides keys set before it
        "list: {<<: [{a: 1}, {a: 2, c: 3}]}\n"  # the earlier map wins
        "empty: {<<: [], x: 1}\n"
        "quoted: {'<<': 5}\n"
        "value: <<\n"
    )
    assert load_yaml(text, source="s") == {
        "base": {"a": 1, "b": 1},
        "first": {"a": 1, "b": 2},
        "later": {"a": 1, "b": 1},
        "list": {"a": 1, "c": 3},
        "empty": {"x": 1},
        "quoted": {"<<": 5},
        "value": "<<",
    }
    with pytest.raises(DecodeError, match="map merge requires a map"):
        load_yaml("a: {<<: 5}", source="s")


def test_first_document_and_duplicates() -> None:
    assert load_yaml("a: 1\na: 2\n---\n[broken", source="s") == {"a": 2}
    assert load_yaml("# only a comment\n", source="s") is None


# -- bounds and errors ----------------------------------------------------------------------


def billion_laughs(levels: int = 10) -> str:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (billion_laughs(), "line 4 column 45: aliases expand to more than 10000 nodes"),
        ("a: &a [*a]", "anchor 'a' value contains itself"),
        ("a: *nope", "unknown anchor 'nope'"),
        ("[" * 10_000 + "]" * 10_000, "nesting"),
        ("x: " + "[" * 65 + "]" * 65, "nesting deeper than 64 levels"),
        ("".join("  " * i + "- \n" for i in range(200)), "nesting deeper than 64 levels"),
        ("".join(" " * i + "k:\n" for i in range(200)), "nesting deeper than 64 levels"),
        ("a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30, "through alias"),
        ("a: [1, 2\nb: c", "line 2 column 2: did not find expected ',' or ']'"),
        ("a: b: c", "line 1 column 5: mapping values are not allowed"),
        ("\ta: 1", "line 1 column 1: found character that cannot start any token"),
        ("a: \x07", "unacceptable character #x0007 (control characters are not allowed)"),
    ],
)
def test_hostile_and_broken_yaml(text: str, problem: str) -> None:
    started = time.monotonic()
    with pytest.raises(DecodeError) as info:
        load_yaml(text, source="annotation 'x'")
    message = str(info.value)
    assert message.startswith("annotation 'x': ")
    assert problem in message
    assert "\n" not in message
    assert time.monotonic() - started < 5  # a bound on work: fails at once, not eventually


def test_alias_depth_counts_where_the_alias_is_used() -> None:
    text = "a: &a [[1]]\nb: [*a]\n"  # b reaches depth 4: mapping, list, then two aliased
    assert load_yaml(text, source="s", max_depth=4)["b"] == [[[1]]]
    with pytest.raises(DecodeError, match="nesting deeper than 3 levels .through alias."):
        load_yaml(text, source="s", max_depth=3)
    with pytest.raises(DecodeError, match="nesting deeper than 2 levels"):
        load_yaml(text, source="s", max_depth=2)


def test_aliases_within_the_bound_are_shared_not_copied() -> None:
    value = load_yaml(billion_laughs(3), source="s")  # aliases add 1,220 nodes
    assert value["l2"][0] is value["l1"]
    assert len(value["l2"]) == 10 and value["l2"][9][9] == value["l0"]


def test_bytes_and_size() -> None:
    assert load_yaml(b"\xef\xbb\xbfa: 1", source="s") == {"a": 1}
    with pytest.raises(DecodeError, match=r"^f: not valid UTF-8 \(at byte 3\)$"):
        load_yaml(b"a: \xff", source="f")
    with pytest.raises(DecodeError, match=r"^f: not valid UTF-8 \(at character 3\)$"):
        load_yaml("a: \udcff", source="f")  # a surrogate-escaped undecodable byte
    with pytest.raises(DecodeError, match=r"^f: too large \(over 10 bytes\)$"):
        load_yaml("a" * 11, source="f", max_bytes=10)
    with pytest.raises(DecodeError, match=r"^f: too large \(11 bytes, limit 10\)$"):
        load_yaml("é" * 5 + "a", source="f", max_bytes=10)  # 6 characters, 11 bytes
    assert load_yaml("a" * 10, source="f", max_bytes=10) == "a" * 10


def test_megabyte_annotations_are_refused_or_bounded() -> None:
    entry = "- {path: /dev/x, type: c, major: 1, minor: 2}\n"
    two_mb = entry * (2 * 2**20 // len(entry))
    started = time.monotonic()
    with pytest.raises(DecodeError, match="too large"):
        load_yaml(two_mb, source="a", max_bytes=ANNOTATION_MAX_BYTES)
    assert time.monotonic() - started < 1
    one_mb = entry * (2**20 // len(entry) - 1)
    assert len(load_yaml(one_mb, source="a")) == 2**20 // len(entry) - 1
    small = entry * 1000
    tracemalloc.start()
    try:
        load_yaml(small, source="a")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * len(small)  # memory grows with the input only: about 13 bytes per byte


# -- JSON -------------------------------------------------------------------------------------


def test_json() -> None:
    assert load_json('{"a": [1, 2.5, "x", null, true]}', source="j") == {
        "a": [1, 2.5, "x", None, True]
    }
    for text, problem in (
        ('{"a": ', "line 1 column 7: Expecting value"),
        ('{"a": NaN}', "invalid JSON value NaN"),
        ('{"a": 1e999}', "number 1e999 out of range"),
        ("[" * 100_000 + "]" * 100_000, "nesting deeper than 64 levels"),
        ("[" * 65 + "]" * 65, "nesting deeper than 64 levels"),
        (b'{"a": "\xff"}', "not valid UTF-8"),
        ('{"a": 1} x', "Extra data"),
    ):
        with pytest.raises(DecodeError, match=problem) as info:
            load_json(text, source="hook.json")
        assert str(info.value).startswith("hook.json: ")


# -- typed conversion -----------------------------------------------------------------------

RLIMIT = Struct("rlimit", {"type": Str(), "hard": Int(64, signed=False), "soft": Int(64, False)})
MOUNT = Struct("mount", {"source": Str(), "destination": Str(), "options": Slice(Str())})


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        (
            "{type: nofile, soft: 1024.0, hard: 2e3}",
            RLIMIT,
            {"type": "nofile", "hard": 2000, "soft": 1024},
        ),
        ("{priority: 3.0}", Struct("p", {"priority": Int(32)}), {"priority": 3}),
        (
            "{source: 123, destination: /d, options: [rbind, 1]}",
            MOUNT,
            {"source": "123", "destination": "/d", "options": ["rbind", "1"]},
        ),
        ("- 42\n- 1.5\n- true\n- 0o17\n- ~\n", Slice(Str()), ["42", "1.5", "true", "15", ""]),
        ("{file_mode: 0o666}", Struct("d", {"file_mode": Int(32, False)}), {"file_mode": 438}),
        ("{Type: x, SOFT: 1, Hard: 2}", RLIMIT, {"type": "x", "hard": 2, "soft": 1}),
        ("{Soft: 1, soft: 2}", RLIMIT, {"type": "", "hard": 0, "soft": 2}),
        ("{SOFT: 1, Soft: 2}", RLIMIT, {"type": "", "hard": 0, "soft": 2}),  # sorted: last wins
        ("{soft: ~, unknown: [1, {a: b}]}", RLIMIT, {"type": "", "hard": 0, "soft": 0}),
        ("~", Slice(RLIMIT), []),
        ("[~]", Slice(RLIMIT), [{"type": "", "hard": 0, "soft": 0}]),
        ("[~]", Slice(Ptr(RLIMIT)), [None]),
        ("{a: 1, b: x}", Map(Str()), {"a": "1", "b": "x"}),
        ("{v: 1.5}", Struct("f", {"v": Float()}), {"v": 1.5}),
        ("{v: 7}", Struct("f", {"v": Ptr(Float())}), {"v": 7.0}),
        ("{v: yes}", Struct("b", {"v": Bool()}), {"v": True}),
        ("{v: .inf}", Struct("s", {"v": Str()}), {"v": "+Inf"}),
        ("{v: [1, {a: 2}]}", Struct("r", {"v": Raw()}), {"v": [1, {"a": 2}]}),
        (f"{{v: {2**64 - 1}}}", Struct("u", {"v": Int(64, False)}), {"v": 2**64 - 1}),
        ("{v: -1e3}", Struct("i", {"v": Int(16)}), {"v": -1000}),
        (
            "{v: 1.2345678901234567e19}",
            Struct("u", {"v": Int(64, False)}),
            {"v": 12345678901234567000},
        ),
    ],
)
def test_yaml_typing_like_upstream(text: str, kind: Any, expected: Any) -> None:
    assert unmarshal_yaml(text, kind, source="a") == expected


@pytest.mark.parametrize(
    ("text", "kind", "problem"),
    [
        ("{soft: 1024.5}", RLIMIT, "soft: cannot unmarshal number 1024.5 into uint64"),
        ("{soft: -1}", RLIMIT, "soft: cannot unmarshal number -1 into uint64"),
        ("{soft: -0.0}", RLIMIT, "soft: cannot unmarshal number -0 into uint64"),
        ("{soft: 1e21}", RLIMIT, r"soft: cannot unmarshal number 1e\+21 into uint64"),
        ("{soft: 1e20}", RLIMIT, "soft: cannot unmarshal number 100000000000000000000 into"),
        ("{soft: 0.0000001}", RLIMIT, "soft: cannot unmarshal number 1e-7 into uint64"),
        (f"{{soft: {2**64}}}", RLIMIT, "number 18446744073709552000 into uint64"),
        ("{soft: '12'}", RLIMIT, "soft: cannot unmarshal string into uint64"),
        ("{soft: true}", RLIMIT, "soft: cannot unmarshal bool into uint64"),
        ("{soft: [1]}", RLIMIT, "soft: cannot unmarshal array into uint64"),
        ("{soft: .nan}", RLIMIT, "soft: unsupported value NaN"),
        ("{x: .inf}", RLIMIT, r"x: unsupported value \+Inf"),
        ("{type: {a: 1}}", RLIMIT, "type: cannot unmarshal object into string"),
        ("[1]", RLIMIT, "cannot unmarshal array into rlimit"),
        ("{a: 1}", Slice(RLIMIT), r"cannot unmarshal object into \[\]rlimit"),
        ("[{soft: x}]", Slice(RLIMIT), r"\[0\].soft: cannot unmarshal string"),
        ("{v: 40000}", Struct("i", {"v": Int(16)}), "number 40000 into int16"),
        ("{v: 1}", Struct("b", {"v": Bool()}), "number 1 into bool"),
        ("{v: x}", Struct("f", {"v": Float()}), "string into float64"),
        ("{v: 1e39}", Struct("f", {"v": Float(32)}), "into float32"),
    ],
)
def test_yaml_typing_refusals_like_go(text: str, kind: Any, problem: str) -> None:
    with pytest.raises(DecodeError, match=problem) as info:
        unmarshal_yaml(text, kind, source="annotation 'k'")
    assert str(info.value).startswith("annotation 'k': ")


def test_json_typing_keeps_literals_and_document_order() -> None:
    hook = Struct("Hook", {"path": Str(), "timeout": Ptr(Int(64)), "args": Slice(Str())})
    assert unmarshal_json('{"Path": "/a", "timeout": 0}', hook, source="h") == {
        "path": "/a",
        "timeout": 0,
        "args": [],
    }
    assert unmarshal_json('{"path": "/b", "PATH": "/a"}', hook, source="h")["path"] == "/a"
    for text, problem in (
        ('{"timeout": 1.0}', "timeout: cannot unmarshal number 1.0 into int64"),
        ('{"timeout": 1e3}', "timeout: cannot unmarshal number 1e3 into int64"),
        ('{"path": 1}', "path: cannot unmarshal number 1 into string"),
        ('{"args": [true]}', r"args\[0\]: cannot unmarshal bool into string"),
    ):
        with pytest.raises(DecodeError, match=problem):
            unmarshal_json(text, hook, source="h")
    assert from_json(json.loads("[1, 2]"), Slice(Float()), source="h") == [1.0, 2.0]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.5, "1.5"),
        (0.1, "0.1"),
        (3.0, "3"),
        (-0.0, "-0"),
        (100000.0, "100000"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (123456789.0, "1.2345679e+08"),
        (3.14159265, "3.1415927"),
        (1e-5, "1e-05"),
        (0.0001, "0.0001"),
        (1e38, "1e+38"),
        (math.inf, "+Inf"),
        (math.nan, "NaN"),
    ],
)
def test_float_strings_are_gos_float32_g_format(value: float, text: str) -> None:
    assert go_float_string(value) == text
    assert from_yaml(value, Str(), source="s") == text


# -- properties -----------------------------------------------------------------------------

# YAML refuses surrogate-pair escapes, and implicit keys of over 1024 characters, as Go does
bmp_text = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)))
short_keys = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)), max_size=100)


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Lists and mappings of ``children``."""
    return st.lists(children, max_size=5) | st.dictionaries(short_keys, children, max_size=5)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | bmp_text,
    containers,
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_json_text_reads_back_as_yaml_and_json(value: Any) -> None:
    text = json.dumps(value)
    assert load_json(text, source="p") == value
    loaded = load_yaml(text, source="p")
    assert loaded == value
    assert json.dumps(loaded) == text  # same types: ints stay ints, floats stay floats


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_arbitrary_input_gives_a_value_or_one_decode_error(data: str | bytes) -> None:
    for load in (load_yaml, load_json):
        try:
            load(data, source="p", max_depth=8)
        except DecodeError as exc:
            assert "\n" not in str(exc) and str(exc).startswith("p: ")


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_integers_fit_or_are_refused(number: int) -> None:
    kind = Struct("v", {"v": Int(64)})
    text = f"v: {number}"
    if -(2**63) <= number < 2**63:
        assert unmarshal_yaml(text, kind, source="p") == {"v": number}
    else:
        with pytest.raises(DecodeError, match="into int64"):
            unmarshal_yaml(text, kind, source="p")
    with pytest.raises(DecodeError, match=r"cannot unmarshal number \S+\.5 into int64"):
        unmarshal_yaml(f"v: {number % 10**6}.5", kind, source="p")


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_float_strings_round_trip_through_float32(value: float) -> None:
    text = go_float_string(value)
    single = struct.unpack("f", struct.pack("f", float(text)))[0]
    assert single == value or (value == 0 and single == 0)
    digits = text.lstrip("-").split("e", maxsplit=1)[0].replace(".", "").strip("0")
    if len(digits) > 1:  # shortest: one significant digit fewer does not round-trip
        shorter = float(f"{value:.{len(digits) - 2}e}")
        assert struct.unpack("f", struct.pack("f", shorter))[0] != value


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=200))
def test_nesting_is_bounded_at_any_depth(depth: int) -> None:
    for text in ("[" * depth + "]" * depth, "".join("  " * i + "-\n" for i in range(depth))):
        if depth <= 64:
            load_yaml(text, source="p")
        else:
            with pytest.raises(DecodeError, match="nesting"):
                load_yaml(text, source="p")


def test_docstring_examples() -> None:
    import doctest
    import importlib

    attempted = 0
    for name in ("", "._base", "._gofmt", "._json", "._typed", "._yaml"):
        module = importlib.import_module("nri.decode" + name)
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted >= 5
