"""The refusals of the server, one type per kind: each carries its HTTP ``status`` and ``kind``.

The transport layers (:mod:`splitcodec.serve.app`, :mod:`splitcodec.serve.ray_app`) catch
:class:`ServeError` and answer ``{"error": kind, "status": status, "detail": message}``; code that
must tell kinds apart catches the subclass.

>>> err = WrongShape("stream holds a 2×3 tensor")
>>> (err.status, err.kind, isinstance(err, ServeError))
(422, 'wrong_shape', True)
>>> KINDS["busy"] is Busy
True
"""

from __future__ import annotations

from typing import Any, ClassVar

from splitcodec.errors import SplitcodecError

__all__ = [
    "ServeError",
    "Malformed",
    "BadConfig",
    "Undecodable",
    "Unauthorized",
    "TooLarge",
    "WrongShape",
    "WrongDtype",
    "WrongCodec",
    "UnknownConfig",
    "ConfigStoreFull",
    "Internal",
    "NonFiniteOutput",
    "Timeout",
    "NotFound",
    "MethodNotAllowed",
    "Busy",
    "ShuttingDown",
    "KINDS",
]


class ServeError(SplitcodecError):
    """A request the server refuses: HTTP ``status``, machine-readable ``kind``, human ``message``."""

    status: ClassVar[int] = 500
    kind: ClassVar[str] = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_json(self) -> dict[str, Any]:
        return {"error": self.kind, "status": self.status, "detail": self.message}


class Malformed(ServeError):
    """Not a valid splitcodec stream (empty, truncated, corrupted, bad header) or a bad request."""

    status, kind = 400, "malformed"


class BadConfig(ServeError):
    """A codec config that is not a JSON object with a string ``"id"``."""

    status, kind = 400, "bad_config"


class Undecodable(ServeError):
    """The container is fine but the payload does not decode (or decodes to non-finite values)."""

    status, kind = 400, "undecodable"


class Unauthorized(ServeError):
    """A token is configured and the request lacks it or has another."""

    status, kind = 401, "unauthorized"


class TooLarge(ServeError):
    """A body or codec config over the server's limit."""

    status, kind = 413, "too_large"


class WrongShape(ServeError):
    """The stream does not hold exactly one sample of the split's feature shape."""

    status, kind = 422, "wrong_shape"


class WrongDtype(ServeError):
    """The stream does not hold a float tensor."""

    status, kind = 422, "wrong_dtype"


class WrongCodec(ServeError):
    """An unknown codec, an image codec, one not allowed here, or one without its fitted state."""

    status, kind = 422, "wrong_codec"


class UnknownConfig(ServeError):
    """The stream refers to a codec config this server was not given."""

    status, kind = 422, "unknown_config"


class ConfigStoreFull(ServeError):
    """The server holds as many codec configs as it may."""

    status, kind = 507, "config_store_full"


class Internal(ServeError):
    """A bug: this request fails, the server goes on."""

    status, kind = 500, "internal"


class NonFiniteOutput(ServeError):
    """The model's tail produced NaN or infinite outputs for these (finite) features."""

    status, kind = 422, "nonfinite_output"


class Timeout(ServeError):
    """The request body did not arrive within the server's body timeout."""

    status, kind = 408, "timeout"


class NotFound(ServeError):
    """No endpoint at this path."""

    status, kind = 404, "not_found"


class MethodNotAllowed(ServeError):
    """The endpoint exists but not for this HTTP method."""

    status, kind = 405, "method_not_allowed"


class Busy(ServeError):
    """The server's queue is full: back-pressure, retry later."""

    status, kind = 503, "busy"


class ShuttingDown(ServeError):
    """The server stopped while the request waited."""

    status, kind = 503, "shutting_down"


#: every refusal type by its ``kind``
KINDS: dict[str, type[ServeError]] = {
    cls.kind: cls
    for cls in (Malformed, BadConfig, Undecodable, Unauthorized, TooLarge, WrongShape, WrongDtype, WrongCodec,
                UnknownConfig, ConfigStoreFull, Internal, NonFiniteOutput, Timeout, NotFound, MethodNotAllowed,
                Busy, ShuttingDown)
}
