"""``nri-trace``: a transparent tracer between an NRI runtime and its external plugins.

``nri-trace --listen /run/nri-trace.sock --runtime /var/run/nri/nri.sock`` accepts plugin
connections, dials the runtime for each and forwards every byte unchanged, in the chunks it
reads them (so the mux framing each side sees is the other side's own), while decoding a copy
on the side: each message is printed with its time, direction, plugin (``NN-name`` from
RegisterPlugin), method, stream id, reply latency and a one-line payload summary (``-v``:
the payload as YAML; ``--json``: one JSON object per line; ``--events``: only these methods).
``--record FILE`` writes the raw chunks in the JSON capture format of the test captures;
``nri-trace replay FILE --plugin CMD`` plays the runtime side of such a file against a plugin
and reports every reply (and plugin request) that differs; exit 1 if any does.
"""

from nri.trace._capture import CaptureError, Chunk, Recorder, load_capture
from nri.trace._proxy import TraceProxy
from nri.trace._render import EventFilter, record_data, render_record, summarize
from nri.trace._replay import Difference, ReplayError, Report, replay
from nri.trace._tap import FROM_PLUGIN, FROM_RUNTIME, Record, Tap

__all__ = [
    "FROM_PLUGIN",
    "FROM_RUNTIME",
    "CaptureError",
    "Chunk",
    "Difference",
    "EventFilter",
    "Record",
    "Recorder",
    "ReplayError",
    "Report",
    "Tap",
    "TraceProxy",
    "load_capture",
    "record_data",
    "render_record",
    "replay",
    "summarize",
]
