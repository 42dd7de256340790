"""A third-party codec registered through the splitcodec.codecs entry-point group (test fixture)."""

import numpy as np

from splitcodec.codecs.base import Codec


class Negate(Codec):
    codec_id = "test-negate"
    lossless = True
    description = "stores -x as float32 (plugin test)"

    def encode_array(self, x):
        return (-x).astype("<f4").tobytes()

    def decode_array(self, payload, shape):
        return -np.frombuffer(payload, dtype="<f4").reshape(shape)
