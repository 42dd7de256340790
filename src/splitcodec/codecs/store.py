"""The receiver side: which codec decodes a stream (inline config, or a reference into a :class:`ConfigStore`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from splitcodec import bitstream
from splitcodec.codecs.base import Codec
from splitcodec.errors import ConfigError, SplitcodecError, UnknownConfigError

if TYPE_CHECKING:
    import torch

__all__ = ["ConfigStore", "decode", "codec_from_stream_config"]


class ConfigStore:
    """What a receiver knows: codec configs by their 4-byte reference (codebooks travel once)."""

    def __init__(self) -> None:
        self._codecs: dict[bytes, Codec] = {}

    def add(self, codec_or_config: Codec | dict[str, Any]) -> bytes:
        """Register a codec (or its config); returns its reference."""
        from splitcodec.codecs.registry import get_codec

        codec = codec_or_config if isinstance(codec_or_config, Codec) else get_codec(codec_or_config)
        ref = codec.config_ref
        self._codecs[ref] = codec
        return ref

    def get(self, ref: bytes) -> Codec:
        try:
            return self._codecs[ref]
        except KeyError:
            raise UnknownConfigError(
                f"stream refers to codec config {ref.hex()}, which this receiver does not hold; "
                "give the receiver the config (CLI: decode --config FILE, the file encode --config-out wrote; "
                "serve --codec-config FILE; Python: ConfigStore.add) or encode with the config inline"
            ) from None

    def __contains__(self, ref: bytes) -> bool:
        return ref in self._codecs

    def __len__(self) -> int:
        return len(self._codecs)


def decode(
    data: bytes,
    store: ConfigStore | None = None,
    *,
    limits: bitstream.Limits = bitstream.DEFAULT_LIMITS,
) -> torch.Tensor:
    """Decode any splitcodec stream: the codec comes from the inline config or from ``store`` by reference."""
    frame = bitstream.unpack(data, limits)
    if frame.config_ref is not None:
        if store is None:
            raise UnknownConfigError(
                f"stream refers to codec config {frame.config_ref.hex()}; pass the ConfigStore that holds it"
            )
        codec = store.get(frame.config_ref)
    else:
        codec = codec_from_stream_config(frame.config)  # type: ignore[arg-type]
    return codec.decode_frame(frame)


def codec_from_stream_config(config: dict[str, Any]) -> Codec:
    """The codec an inline stream config describes; any failure to build it is a :class:`ConfigError`."""
    from splitcodec.codecs.registry import get_codec

    try:
        return get_codec(config)
    except SplitcodecError as exc:
        raise ConfigError(f"stream names a codec this receiver cannot build: {exc}") from exc
    except Exception as exc:  # noqa: BLE001  (a codec's from_config/set_state choking on hostile state)
        raise ConfigError(
            f"stream names a codec this receiver cannot build: {type(exc).__name__} in its config"
        ) from exc
