"""Our NRI schema must be wire-identical to upstream NRI v0.12's.

tests/data/nri-api-v1alpha1.binpb is upstream's compiled FileDescriptorSet
(containerd/nri pkg/api/api.proto). Every message, field (number, type, label, referenced
type, map-ness), enum value, service and method (input/output types, streaming) is compared,
and each difference is reported by name.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from nri.api import api_pb2

DATA = Path(__file__).parent / "data"
FieldProto = descriptor_pb2.FieldDescriptorProto


def upstream_file() -> descriptor_pb2.FileDescriptorProto:
    blob = (DATA / "nri-api-v1alpha1.binpb").read_bytes()
    files = descriptor_pb2.FileDescriptorSet.FromString(blob).file
    assert len(files) == 1, "expected exactly one file in upstream's descriptor set"
    return files[0]


def our_file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    api_pb2.DESCRIPTOR.CopyToProto(proto)
    return proto


def _by_name(items: object) -> dict[str, object]:
    return {item.name: item for item in items}  # type: ignore[attr-defined]


def _compare_keys(where: str, ours: dict[str, object], theirs: dict[str, object]) -> Iterator[str]:
    for name in sorted(theirs.keys() - ours.keys()):
        yield f"{where}: {name} is missing"
    for name in sorted(ours.keys() - theirs.keys()):
        yield f"{where}: {name} is not in upstream's schema"


def _field_signature(field: FieldProto, is_map: bool) -> dict[str, object]:
    return {
        "number": field.number,
        "type": FieldProto.Type.Name(field.type),
        "label": FieldProto.Label.Name(field.label),
        "type_name": field.type_name,
        "proto3_optional": field.proto3_optional,
        "oneof_index": field.oneof_index if field.HasField("oneof_index") else None,
        "map": is_map,
        "packed": field.options.packed if field.options.HasField("packed") else None,
    }


def _compare_enum(
    where: str, ours: descriptor_pb2.EnumDescriptorProto, theirs: descriptor_pb2.EnumDescriptorProto
) -> Iterator[str]:
    our_values = {v.name: v.number for v in ours.value}
    their_values = {v.name: v.number for v in theirs.value}
    yield from _compare_keys(f"enum {where}", our_values, their_values)  # type: ignore[arg-type]
    for name in sorted(our_values.keys() & their_values.keys()):
        if our_values[name] != their_values[name]:
            yield (f"enum {where}.{name}: value {our_values[name]}, upstream {their_values[name]}")


def _compare_message(
    where: str, ours: descriptor_pb2.DescriptorProto, theirs: descriptor_pb2.DescriptorProto
) -> Iterator[str]:
    if ours.options.map_entry != theirs.options.map_entry:
        yield f"message {where}: map_entry {ours.options.map_entry}, upstream differs"
    our_maps = {n.name for n in ours.nested_type if n.options.map_entry}
    their_maps = {n.name for n in theirs.nested_type if n.options.map_entry}
    our_fields = _by_name(ours.field)
    their_fields = _by_name(theirs.field)
    yield from _compare_keys(f"message {where} field", our_fields, their_fields)
    for name in sorted(our_fields.keys() & their_fields.keys()):
        mine, upstream = our_fields[name], their_fields[name]
        assert isinstance(mine, FieldProto) and isinstance(upstream, FieldProto)
        a = _field_signature(mine, mine.type_name.rsplit(".", 1)[-1] in our_maps)
        b = _field_signature(upstream, upstream.type_name.rsplit(".", 1)[-1] in their_maps)
        for key in a:
            if a[key] != b[key]:
                yield f"field {where}.{name}: {key} is {a[key]!r}, upstream {b[key]!r}"
    our_oneofs = [o.name for o in ours.oneof_decl]
    their_oneofs = [o.name for o in theirs.oneof_decl]
    if our_oneofs != their_oneofs:
        yield f"message {where}: oneofs {our_oneofs}, upstream {their_oneofs}"
    yield from _compare_all(where, ours, theirs)


def _compare_all(prefix: str, ours: object, theirs: object) -> Iterator[str]:
    join = f"{prefix}." if prefix else ""
    our_msgs = _by_name(ours.nested_type if prefix else ours.message_type)  # type: ignore[attr-defined]
    their_msgs = _by_name(theirs.nested_type if prefix else theirs.message_type)  # type: ignore[attr-defined]
    yield from _compare_keys(f"messages of {prefix or 'file'}", our_msgs, their_msgs)
    for name in sorted(our_msgs.keys() & their_msgs.keys()):
        yield from _compare_message(f"{join}{name}", our_msgs[name], their_msgs[name])  # type: ignore[arg-type]
    our_enums = _by_name(ours.enum_type)  # type: ignore[attr-defined]
    their_enums = _by_name(theirs.enum_type)  # type: ignore[attr-defined]
    yield from _compare_keys(f"enums of {prefix or 'file'}", our_enums, their_enums)
    for name in sorted(our_enums.keys() & their_enums.keys()):
        yield from _compare_enum(f"{join}{name}", our_enums[name], their_enums[name])  # type: ignore[arg-type]


def _compare_services(
    ours: descriptor_pb2.FileDescriptorProto, theirs: descriptor_pb2.FileDescriptorProto
) -> Iterator[str]:
    our_services = _by_name(ours.service)
    their_services = _by_name(theirs.service)
    yield from _compare_keys("services", our_services, their_services)
    for name in sorted(our_services.keys() & their_services.keys()):
        mine = _by_name(our_services[name].method)  # type: ignore[attr-defined]
        upstream = _by_name(their_services[name].method)  # type: ignore[attr-defined]
        yield from _compare_keys(f"service {name} method", mine, upstream)
        for method in sorted(mine.keys() & upstream.keys()):
            a, b = mine[method], upstream[method]
            for key in ("input_type", "output_type", "client_streaming", "server_streaming"):
                if getattr(a, key) != getattr(b, key):
                    yield (
                        f"method {name}.{method}: {key} is {getattr(a, key)!r}, "
                        f"upstream {getattr(b, key)!r}"
                    )


def schema_differences(
    ours: descriptor_pb2.FileDescriptorProto, theirs: descriptor_pb2.FileDescriptorProto
) -> list[str]:
    """Every wire-relevant difference between two single-file schemas, named."""
    found = []
    if ours.package != theirs.package:
        found.append(f"package is {ours.package!r}, upstream {theirs.package!r}")
    if ours.syntax != theirs.syntax:
        found.append(f"syntax is {ours.syntax!r}, upstream {theirs.syntax!r}")
    found.extend(_compare_all("", ours, theirs))
    found.extend(_compare_services(ours, theirs))
    return found


def test_schema_is_wire_identical_to_upstream() -> None:
    differences = schema_differences(our_file(), upstream_file())
    assert not differences, "schema differs from upstream:\n" + "\n".join(differences)


def test_schema_has_upstream_services_and_sizes() -> None:
    ours = our_file()
    assert ours.package == "nri.pkg.api.v1alpha1"
    assert [s.name for s in ours.service] == ["Runtime", "Plugin", "HostFunctions"]
    assert len(ours.message_type) == len(upstream_file().message_type) == 85


def _mutations() -> Iterator[tuple[str, descriptor_pb2.FileDescriptorProto, str]]:
    base = upstream_file()

    changed = copy.deepcopy(base)
    msg = next(m for m in changed.message_type if m.name == "RegisterPluginRequest")
    msg.field[1].number = 7
    yield "field number", changed, "RegisterPluginRequest.plugin_idx: number is 7, upstream 2"

    changed = copy.deepcopy(base)
    msg = next(m for m in changed.message_type if m.name == "Container")
    msg.field[0].type = FieldProto.TYPE_BYTES
    yield "field type", changed, "Container.id: type is 'TYPE_BYTES'"

    changed = copy.deepcopy(base)
    enum = next(e for e in changed.enum_type if e.name == "Event")
    enum.value[4].number = 40
    yield "enum value", changed, "Event.CREATE_CONTAINER: value 40, upstream 4"

    changed = copy.deepcopy(base)
    service = next(s for s in changed.service if s.name == "Plugin")
    service.method[0].output_type = ".nri.pkg.api.v1alpha1.Empty"
    yield "method output", changed, "Plugin.Configure: output_type"

    changed = copy.deepcopy(base)
    msg = next(m for m in changed.message_type if m.name == "PodSandbox")
    del msg.field[-1]
    yield "missing field", changed, "message PodSandbox field: "

    changed = copy.deepcopy(base)
    msg = next(m for m in changed.message_type if m.name == "LinuxMemory")
    msg.field[0].label = FieldProto.LABEL_REPEATED
    yield "label", changed, "LinuxMemory.limit: label is 'LABEL_REPEATED'"


@pytest.mark.parametrize(
    ("what", "changed", "expected"), [pytest.param(*m, id=m[0]) for m in _mutations()]
)
def test_comparison_names_each_difference(
    what: str, changed: descriptor_pb2.FileDescriptorProto, expected: str
) -> None:
    differences = schema_differences(changed, upstream_file())
    assert any(expected in d for d in differences), (what, differences)


def test_committed_bindings_are_fresh() -> None:
    import subprocess
    import sys

    tool = Path(__file__).parent.parent / "tools" / "gen_proto.py"
    result = subprocess.run(
        [sys.executable, str(tool), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
