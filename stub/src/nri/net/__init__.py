"""NRI connection multiplexer and socket helpers (upstream ``pkg/net``).

:mod:`nri.net._frames` is the sans-IO frame codec, :mod:`nri.net._mux` the asyncio
multiplexer and :mod:`nri.net._socket` the socketpair / inherited-fd helpers.
"""

from nri.net._frames import (
    DEFAULT_MAX_FRAME_PAYLOAD,
    DEFAULT_MAX_READ_PAYLOAD,
    FRAME_HEADER_SIZE,
    MAX_CONN_ID,
    PLUGIN_SERVICE_CONN,
    RESERVED_CONN_ID,
    RUNTIME_SERVICE_CONN,
    UPSTREAM_MAX_PAYLOAD,
    Frame,
    FrameDecoder,
    MuxProtocolError,
    encode_frames,
)
from nri.net._mux import (
    DEFAULT_MAX_WRITE_BUFFER,
    DEFAULT_READ_QUEUE_BYTES,
    DEFAULT_READ_QUEUE_LENGTH,
    Mux,
    MuxClosedError,
)
from nri.net._socket import (
    PLUGIN_IDX_ENV,
    PLUGIN_NAME_ENV,
    PLUGIN_SOCKET_ENV,
    PLUGIN_SOCKET_FD,
    SocketEnvError,
    plugin_environment,
    socket_from_env,
    socketpair,
    spawn_with_socket,
)

__all__ = [
    "DEFAULT_MAX_FRAME_PAYLOAD",
    "DEFAULT_MAX_READ_PAYLOAD",
    "DEFAULT_MAX_WRITE_BUFFER",
    "DEFAULT_READ_QUEUE_BYTES",
    "DEFAULT_READ_QUEUE_LENGTH",
    "FRAME_HEADER_SIZE",
    "MAX_CONN_ID",
    "PLUGIN_IDX_ENV",
    "PLUGIN_NAME_ENV",
    "PLUGIN_SERVICE_CONN",
    "PLUGIN_SOCKET_ENV",
    "PLUGIN_SOCKET_FD",
    "RESERVED_CONN_ID",
    "RUNTIME_SERVICE_CONN",
    "UPSTREAM_MAX_PAYLOAD",
    "Frame",
    "FrameDecoder",
    "Mux",
    "MuxClosedError",
    "MuxProtocolError",
    "SocketEnvError",
    "encode_frames",
    "plugin_environment",
    "socket_from_env",
    "socketpair",
    "spawn_with_socket",
]
