"""nri: the Node Resource Interface (NRI) of containerd and CRI-O, for Python.

Subpackages, one per concern:

- :mod:`nri.api` — the protocol schema (generated protobuf bindings) and helpers: event
  masks, plugin naming rules, adjustment and update builders.
- :mod:`nri.ttrpc` — containerd's ttRPC: sans-IO codec, asyncio client and server.
- :mod:`nri.net` — the NRI connection multiplexer and socket hand-over helpers.
- :mod:`nri.stub` — the plugin stub: what a plugin author subclasses and runs.
- :mod:`nri.oci` — applies adjustments and updates to OCI runtime specs.
"""

__version__ = "0.1.0"
