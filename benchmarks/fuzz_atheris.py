"""Coverage-guided fuzzing (atheris/libFuzzer) of one decoder; run by ``benchmarks/fuzz.py --atheris-runs``.

    python benchmarks/fuzz_atheris.py CODEC STATS.json -timeout=1 -rss_limit_mb=3000 -runs=N CORPUS_DIR

Any exception other than a SplitcodecError crashes the run (libFuzzer writes the input as crash-*);
a decode over 1 s or the RSS limit also stops it.  Counts are written to STATS.json as it goes.
"""

import collections
import json
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["splitcodec"]):
    from splitcodec.bitstream import Limits, unpack
    from splitcodec.codecs import decode
    from splitcodec.errors import SplitcodecError

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def main() -> None:
    codec_id, stats_path = sys.argv[1], Path(sys.argv[2])
    seed = next((FIXTURES / codec_id).glob("*.scb")).read_bytes()
    numel = max(unpack(seed).numel, 1)
    limits = Limits(max_bytes=4 * len(seed) + 1024, max_elements=4 * numel, max_config_bytes=1 << 16)
    stats = collections.Counter()

    def one(data: bytes) -> None:
        stats["inputs"] += 1
        try:
            decode(data, limits=limits)
            stats["decoded"] += 1
        except SplitcodecError:
            stats["clean_error"] += 1
        if stats["inputs"] % 200 == 0:
            stats_path.write_text(json.dumps(stats))

    atheris.Setup([sys.argv[0], *sys.argv[3:]], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
