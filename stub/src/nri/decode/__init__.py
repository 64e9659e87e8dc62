"""Bounded YAML and JSON decoding with Go-compatible value typing.

Plugins read annotations, hook files and configuration that reach a root daemon, so every
input is hostile until decoded. :func:`load_yaml` and :func:`load_json` turn text into plain
Python values within fixed bounds, and :func:`from_yaml` / :func:`from_json` convert those
values into the shapes a Go plugin would get from the same text. Every failure is a
:class:`DecodeError` whose message is one line naming the source and, where known, the line
and column or the field.

Bounds
    * input larger than ``max_bytes`` (1 MiB by default; pass :data:`ANNOTATION_MAX_BYTES`,
      256 KiB, for an annotation) is refused before parsing;
    * bytes that are not UTF-8 (a leading UTF-8 byte order mark is dropped) are refused;
    * collections nested deeper than ``max_depth`` (64) are refused, counting the nesting
      that aliases bring in;
    * aliases may add at most ``max_alias_nodes`` (10,000) nodes in total, so an alias bomb
      fails at once; an alias to an anchor that is still open (a cycle) is refused;
    * values are built without recursion, so no input raises ``RecursionError``.

YAML scalars (the rules of ``go.yaml.in/yaml/v2``, which ``sigs.k8s.io/yaml`` uses)
    Only the first document is read; an empty document is ``None``. Quoted and block
    scalars are strings. A plain scalar is resolved like this:

    * ``~``, ``null``, ``Null``, ``NULL`` and the empty scalar are ``None``;
    * ``y Y yes Yes YES on On ON true True TRUE`` are ``True`` and
      ``n N no No NO off Off OFF false False FALSE`` are ``False`` (YAML 1.1);
    * integers, after removing every ``_``, in Go's notations: ``1_000``, ``-12``, ``0x1F``,
      ``0b101``, ``0o666`` and the leading-zero octal ``0666`` (both 438); from -2**63 to
      2**64-1 (an unsigned one without sign); a larger one is a float;
    * floats: ``1.5``, ``.5``, ``2e3``, ``-1.5E-3`` (an exponent needs no dot, so ``2e3``
      is the float 2000.0), ``.inf``, ``-.inf``, ``.nan``; a float that overflows and an
      invalid octal such as ``08`` (which Go reads as the float 8.0) follow Go too;
    * everything else, timestamps and sexagesimal numbers such as ``1:30`` included, is a
      string.

    Explicit tags: ``!!str`` gives a string, ``!!int``/``!!float``/``!!bool``/``!!null``
    must match the value (``!!float 1`` is 1.0), ``!!binary`` is base64-decoded, any other
    tag leaves the text as a string. Mapping keys become strings as ``sigs.k8s.io/yaml`` makes them
    (``1`` -> ``"1"``, ``true`` -> ``"true"``); a null, collection or out-of-range key is
    refused. ``<<`` merge keys are applied where they appear (later keys override them, and
    in a list of maps the earlier map wins). A repeated key keeps its last value.

Typed conversion (:func:`from_yaml`, :func:`from_json`)
    Upstream decodes YAML by converting it to JSON and unmarshalling the JSON into typed Go
    structs with ``encoding/json``; hook files are JSON unmarshalled directly. A target is
    described with :class:`Str`, :class:`Bool`, :class:`Int`, :class:`Float`,
    :class:`Slice`, :class:`Map`, :class:`Ptr`, :class:`Struct` and :class:`Raw`:

    * struct fields match keys exactly, else case-insensitively (``"Path"`` fills ``path``);
      unknown keys are ignored; the result is a dict holding every field, absent ones with
      their Go zero value (``""``, ``0``, ``False``, ``[]``, ``{}``, ``None`` for a
      :class:`Ptr`); ``null`` leaves a field at its zero value (a :class:`Ptr` at ``None``);
    * an integer target takes a number whose JSON form is an integer in range: YAML
      ``1024.0`` and ``2e3`` are 1024 and 2000, but ``1024.5``, ``1e21``, a string, a
      boolean or a value out of range is refused, as Go refuses them; in JSON the literal
      counts (``1.0`` is refused for an integer, as Go does);
    * only from YAML, a string target also takes a scalar: an integer as its decimal digits
      (``123`` -> ``"123"``, ``0o666`` -> ``"438"``), a float in Go's shortest float32
      form (``1.5`` -> ``"1.5"``, ``1e6`` -> ``"1e+06"``) and a boolean as
      ``"true"``/``"false"``; from JSON a string target needs a JSON string;
    * ``NaN`` or an infinity fails the conversion, as Go's JSON encoder refuses them, unless
      it goes into a string field (then it is ``"NaN"``, ``"+Inf"`` or ``"-Inf"``).

Differences on purpose: input that is not UTF-8 is refused (Go would substitute U+FFFD),
and the bounds above are stricter than Go's alias heuristics.

Example, an annotation decoded the way upstream's ulimit-adjuster decodes it::

    >>> ulimit = Struct("ulimit", {"type": Str(), "soft": Int(64, signed=False)})
    >>> text = "- {type: 7, SOFT: 1024.0}"
    >>> unmarshal_yaml(text, Slice(ulimit), source="annotation", max_bytes=ANNOTATION_MAX_BYTES)
    [{'type': '7', 'soft': 1024}]
"""

from nri.decode._base import (
    ANNOTATION_MAX_BYTES,
    MAX_ALIAS_NODES,
    MAX_BYTES,
    MAX_DEPTH,
    DecodeError,
)
from nri.decode._files import TextFileError, read_text_file
from nri.decode._gofmt import go_float_string
from nri.decode._json import JsonNumber, load_json
from nri.decode._typed import (
    Bool,
    Float,
    GoType,
    Int,
    Map,
    Ptr,
    Raw,
    Slice,
    Str,
    Struct,
    describe,
    from_json,
    from_yaml,
    json_kind,
    unmarshal_json,
    unmarshal_yaml,
)
from nri.decode._yaml import load_annotation, load_yaml

__all__ = [
    "ANNOTATION_MAX_BYTES",
    "MAX_ALIAS_NODES",
    "MAX_BYTES",
    "MAX_DEPTH",
    "Bool",
    "DecodeError",
    "Float",
    "GoType",
    "Int",
    "JsonNumber",
    "Map",
    "Ptr",
    "Raw",
    "Slice",
    "Str",
    "Struct",
    "TextFileError",
    "describe",
    "from_json",
    "from_yaml",
    "go_float_string",
    "json_kind",
    "load_annotation",
    "load_json",
    "load_yaml",
    "read_text_file",
    "unmarshal_json",
    "unmarshal_yaml",
]
