"""Codecs: one file per method, all behind :class:`~splitcodec.codecs.base.Codec` and one registry."""

from splitcodec.codecs.base import Codec
from splitcodec.codecs.store import ConfigStore, decode
from splitcodec.codecs.registry import (
    available_codecs,
    codec_class,
    create_codec,
    default_settings,
    get_codec,
    list_codecs,
    parse_codec_spec,
    register_codec,
)

__all__ = [
    "Codec",
    "ConfigStore",
    "available_codecs",
    "codec_class",
    "create_codec",
    "decode",
    "default_settings",
    "parse_codec_spec",
    "get_codec",
    "list_codecs",
    "register_codec",
]
