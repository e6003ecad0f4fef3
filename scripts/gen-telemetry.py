#!/usr/bin/python3
"""Writes sample telemetry recordings in the format of examples/formats/telemetry.json.

usage: gen-telemetry.py OUTDIR [--files N] [--records M] [--seed S] [--malformed] [--expected]

Files are OUTDIR/flight-000.tlm, flight-001.tlm, ...; with --malformed also
OUTDIR/malformed-truncated.tlm (its last record cut short and record_count one too high)
and OUTDIR/malformed-version.tlm (version 7, which the descriptor's validate rejects).
With --expected, OUTDIR/expected.json holds the values written into each good file (tests).
"""
import argparse
import json
import pathlib
import random
import struct

HEADER = struct.Struct("<4sHHIIQBBHI16sf12s")  # 64 bytes
RECORD = struct.Struct("<QHBBId")  # 24 bytes
assert HEADER.size == 64 and RECORD.size == 24

MODES = 4      # idle, ground, flight, maintenance
KINDS = 3      # sample, event, marker


def recording(rng, index, records, version=1, count=None, expected=None):
    start_ns = 1_700_000_000_000_000_000 + index * 3_600_000_000_000
    rate = rng.choice([10, 50, 100, 1000])
    status = rng.randrange(32)
    header = HEADER.pack(b"TLM1", version, 64, 0x1000 + index, rate, start_ns,
                         index % MODES, status, RECORD.size,
                         records if count is None else count,
                         f"probe-{index:02d}".encode(), 1.0 + index / 8, bytes(12))
    body = bytearray()
    rows = []
    for seq in range(records):
        row = (seq * 1_000_000 // rate, rng.randrange(8), rng.randrange(KINDS), rng.randrange(8),
               seq, round(rng.gauss(20.0, 5.0), 6))
        rows.append(row)
        body += RECORD.pack(*row)
    if expected is not None:
        expected.update(device_id=0x1000 + index, sample_rate_hz=rate, start_time_ns=start_ns,
                        mode=index % MODES, status=status, record_count=records,
                        device_name=f"probe-{index:02d}", calibration=1.0 + index / 8,
                        records=[dict(zip(("timestamp_us", "channel", "kind", "quality",
                                           "sequence", "value"), r)) for r in rows])
    return header + bytes(body)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--files", type=int, default=3)
    ap.add_argument("--records", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--malformed", action="store_true")
    ap.add_argument("--expected", action="store_true")
    args = ap.parse_args()
    out = pathlib.Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    expected = {}
    for i in range(args.files):
        name = f"flight-{i:03d}.tlm"
        expected[name] = {}
        (out / name).write_bytes(recording(rng, i, args.records, expected=expected[name]))
    if args.expected:
        (out / "expected.json").write_text(json.dumps(expected, indent=1))
    if args.malformed:
        data = recording(rng, 90, 5, count=6)
        (out / "malformed-truncated.tlm").write_bytes(data + data[64:64 + 10])
        (out / "malformed-version.tlm").write_bytes(recording(rng, 91, 2, version=7))


if __name__ == "__main__":
    main()
