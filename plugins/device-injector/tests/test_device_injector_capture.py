"""Replay upstream's captured CreateContainer through our handler: same adjustment, same bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from nri_device_injector import DeviceInjector

from nri.api import pb

CAPTURE = Path(__file__).parent / "data" / "device-injector.json"


def captured(method: str, direction: str) -> dict[str, Any]:
    messages = json.loads(CAPTURE.read_text())["decoded"]["ttrpc_messages"]
    (message,) = [m for m in messages if m["method"] == method and m["dir"] == direction]
    return message  # type: ignore[no-any-return]


def test_replayed_create_container_gives_the_captured_adjustment() -> None:
    request_record = captured("CreateContainer", "runtime->plugin")
    response_record = captured("CreateContainer", "plugin->runtime")
    request = pb.CreateContainerRequest.FromString(bytes.fromhex(request_record["payload_hex"]))
    expected = pb.CreateContainerResponse.FromString(bytes.fromhex(response_record["payload_hex"]))
    assert json_format.MessageToDict(request) == request_record["payload"]

    adjust = DeviceInjector().create_container(request.pod, request.container)

    response = pb.CreateContainerResponse(adjust=adjust.message)
    assert response == expected
    assert response.SerializeToString(deterministic=True) == bytes.fromhex(
        response_record["payload_hex"]
    )


def test_capture_subscription_matches_upstream() -> None:
    from nri.stub import implemented_events

    configure = captured("Configure", "plugin->runtime")
    assert int(implemented_events(DeviceInjector())) == configure["payload"]["events"] == 8
