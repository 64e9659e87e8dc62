"""Field ownership: claims, conflicts with upstream's text, removal markers, proto form."""

import pytest

from nri.adaptation._owners import COMPOUND_FIELDS, ConflictError, FieldOwners, go_quote
from nri.api import api_pb2 as pb

F = pb.Field.Value


def test_simple_conflict_text_has_upstream_trailing_space():
    owners = FieldOwners()
    owners.claim("c1", F("MemLimit"), "10-a")
    with pytest.raises(ConflictError) as info:
        owners.claim("c1", F("MemLimit"), "20-b")
    assert str(info.value) == 'plugins "20-b" and "10-a" both tried to set MemLimit '


@pytest.mark.parametrize("name", sorted(pb.Field.Name(f) for f in COMPOUND_FIELDS))
def test_compound_conflict_text(name):
    owners = FieldOwners()
    owners.claim("c1", F(name), "30-logger", "FOO")
    owners.claim("c1", F(name), "31-logger", "BAR")  # another key is free
    with pytest.raises(ConflictError) as info:
        owners.claim("c1", F(name), "31-logger", "FOO")
    assert str(info.value) == f'plugins "31-logger" and "30-logger" both tried to set {name} FOO'


def test_ownership_is_per_container():
    owners = FieldOwners()
    owners.claim("c1", F("CPUShares"), "10-a")
    owners.claim("c2", F("CPUShares"), "20-b")
    assert owners.owner("c1", F("CPUShares")) == "10-a"
    assert owners.owner("c2", F("CPUShares")) == "20-b"


def test_same_plugin_twice_conflicts_with_itself():
    owners = FieldOwners()
    owners.claim("c1", F("Env"), "10-a", "X")
    with pytest.raises(ConflictError, match='plugins "10-a" and "10-a" both tried to set Env X'):
        owners.claim("c1", F("Env"), "10-a", "X")


def test_removal_marker_only_frees_for_the_remover():
    owners = FieldOwners()
    owners.claim("c1", F("Env"), "10-a", "X")
    owners.clear("c1", F("Env"), "20-b", "X")
    assert owners.owner("c1", F("Env"), "X") == "-20-b"
    with pytest.raises(ConflictError, match='plugins "30-c" and "20-b" both tried to set Env X'):
        owners.claim("c1", F("Env"), "30-c", "X")
    owners.claim("c1", F("Env"), "20-b", "X")
    assert owners.owner("c1", F("Env"), "X") == "20-b"


def test_simple_removal_marker():
    owners = FieldOwners()
    owners.clear("c1", F("Args"), "10-a")
    owners.claim("c1", F("Args"), "10-a")
    owners.clear("c1", F("Args"), "10-a")
    with pytest.raises(ConflictError, match="both tried to set Args $"):
        owners.claim("c1", F("Args"), "20-b")


def test_hooks_accumulate_without_conflict():
    owners = FieldOwners()
    owners.claim("c1", F("OciHooks"), "10-a")
    owners.claim("c1", F("OciHooks"), "20-b")
    assert owners.owner("c1", F("OciHooks")) == "10-a,20-b"


def test_clear_rdt_marks_all_three_fields():
    owners = FieldOwners()
    owners.claim("c1", F("RdtClosID"), "10-a")
    owners.clear_rdt("c1", "20-b")
    for name in ("RdtClosID", "RdtSchemata", "RdtEnableMonitoring"):
        assert owners.owner("c1", F(name)) == "-20-b"


def test_key_required_exactly_for_compound_fields():
    owners = FieldOwners()
    with pytest.raises(ValueError, match="Env is owned per key"):
        owners.claim("c1", F("Env"), "10-a")
    with pytest.raises(ValueError, match="MemLimit is a simple field"):
        owners.claim("c1", F("MemLimit"), "10-a", "x")


def test_proto_round_trip():
    owners = FieldOwners()
    owners.claim("c1", F("MemLimit"), "10-a")
    owners.claim("c1", F("Annotations"), "10-a", "k")
    owners.clear("c2", F("Mounts"), "20-b", "/m")
    msg = owners.to_proto()
    assert dict(msg.owners["c1"].simple) == {F("MemLimit"): "10-a"}
    assert dict(msg.owners["c1"].compound[F("Annotations")].owners) == {"k": "10-a"}
    assert dict(msg.owners["c2"].compound[F("Mounts")].owners) == {"/m": "-20-b"}
    wire = pb.OwningPlugins.FromString(msg.SerializeToString())
    again = FieldOwners.from_proto(wire)
    assert again.to_proto() == msg
    assert again.compound_owners("c1", F("Annotations")) == {"k": "10-a"}
    assert again.compound_owners("c1", F("Env")) is None


def test_snapshot_restore():
    owners = FieldOwners()
    snap = owners.snapshot("c1")
    owners.claim("c1", F("MemLimit"), "10-a")
    owners.restore("c1", snap)
    assert list(owners.container_ids()) == []
    owners.claim("c1", F("MemLimit"), "10-a")
    snap = owners.snapshot("c1")
    owners.claim("c1", F("CPUShares"), "10-a")
    owners.restore("c1", snap)
    assert owners.owner("c1", F("CPUShares")) is None
    assert owners.owner("c1", F("MemLimit")) == "10-a"


def test_go_quote():
    assert go_quote('a"b\\c\n\x01é') == '"a\\"b\\\\c\\n\\x01é"'
