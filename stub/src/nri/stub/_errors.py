"""The errors of :mod:`nri.stub`, in one module that every other one may import."""

from __future__ import annotations


class StubError(Exception):
    """The stub cannot run: bad identity, failed registration, refused configuration."""


class RuntimeGoneError(StubError, ConnectionError):
    """The connection to the runtime was closed (the runtime went away)."""


class RegistrationRefusedError(StubError):
    """The runtime refused to register the plugin (e.g. its name is taken)."""


class ConfigError(ValueError):
    """A plugin configuration is malformed; the message names the source and the key."""


class RequestError(Exception):
    """An expected failure of one request, e.g. a pod annotation the plugin cannot apply.

    Raise it (or a subclass, or any :class:`ValueError`) from a handler to fail that request
    with ``str(exc)`` as the reason: the stub logs it once, on one line naming the pod or
    container, without a traceback. Any other exception is taken for a bug in the plugin and
    logged with its traceback. Either way only that request fails; the plugin keeps serving.
    """


EXPECTED_ERRORS: tuple[type[Exception], ...] = (RequestError, ValueError)
"""Exceptions a handler raises to refuse a request; the stub logs them without traceback."""
