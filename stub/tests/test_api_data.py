"""nri.api.message_to_data: messages as plain data."""

from nri.api import api_pb2 as pb
from nri.api import message_to_data


def test_set_fields_only_enums_by_name_maps_sorted() -> None:
    container = pb.Container(
        id="c1",
        state=pb.CONTAINER_RUNNING,
        labels={"b": "2", "a": "1"},
        linux=pb.LinuxContainer(oom_score_adj=pb.OptionalInt(value=-5)),
    )
    data = message_to_data(container)
    assert data == {
        "id": "c1",
        "state": "CONTAINER_RUNNING",
        "labels": {"a": "1", "b": "2"},
        "linux": {"oom_score_adj": {"value": -5}},
    }
    assert list(data["labels"]) == ["a", "b"]
    assert message_to_data([pb.Mount(destination="/x")]) == [{"destination": "/x"}]
