#!/usr/bin/env node
// Reads a payload through a payloadfs mount with nothing but Node's fs module.
//
// usage: node node_client.js MNT/<file> [SLICE]
//
// Prints one JSON object: the payload's format and slice count (from header.json), and for
// SLICE (default: the first slice with a NumPy dtype) its dtype, element count, first values
// (read through a TypedArray, or a DataView for big-endian data) and the SHA-256 of its bytes.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

// NumPy type strings (as slices.json gives them) -> [TypedArray, DataView getter, bytes].
const TYPES = {
  f4: [Float32Array, 'getFloat32', 4], f8: [Float64Array, 'getFloat64', 8],
  i1: [Int8Array, 'getInt8', 1], i2: [Int16Array, 'getInt16', 2],
  i4: [Int32Array, 'getInt32', 4], i8: [BigInt64Array, 'getBigInt64', 8],
  u1: [Uint8Array, 'getUint8', 1], u2: [Uint16Array, 'getUint16', 2],
  u4: [Uint32Array, 'getUint32', 4], u8: [BigUint64Array, 'getBigUint64', 8],
  b1: [Uint8Array, 'getUint8', 1],
};
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// The first `count` elements of `bytes` (a Buffer) read as `dtype` ('<f4', '>i2', '|u1' ...).
function firstValues(bytes, dtype, count) {
  const type = typeof dtype === 'string' ? TYPES[dtype.slice(1)] : undefined;
  if (type === undefined) return null;  // structured, float16, strings: not shown here
  const [Typed, getter, size] = type;
  const n = Math.min(count, Math.floor(bytes.length / size));
  const little = dtype[0] === '<' || dtype[0] === '|' || (dtype[0] === '=' && LITTLE_ENDIAN_HOST);
  let values;
  if (little === LITTLE_ENDIAN_HOST) {
    // Native byte order: a TypedArray over an aligned copy of the first elements.
    const aligned = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + n * size);
    values = Array.from(new Typed(aligned));
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    values = Array.from({length: n}, (_, i) => view[getter](i * size, little));
  }
  if (dtype.endsWith('b1')) return values.map((v) => v !== 0);
  return values.map((v) => (typeof v === 'bigint' ? v.toString() : v));
}

function main(argv) {
  if (argv.length < 1 || argv.length > 2) {
    process.stderr.write('usage: node node_client.js MNT/<file> [SLICE]\n');
    return 2;
  }
  const payload = argv[0];
  const header = JSON.parse(fs.readFileSync(path.join(payload, 'header.json'), 'utf8'));
  const slices = JSON.parse(fs.readFileSync(path.join(payload, 'slices.json'), 'utf8'));
  const entry = argv.length === 2
    ? slices.find((s) => s.name === argv[1])
    : slices.find((s) => 'numpy_dtype' in s || 'dtype' in s);
  if (entry === undefined) {
    process.stderr.write(`no such slice in ${payload}\n`);
    return 1;
  }
  const dtype = entry.numpy_dtype !== undefined ? entry.numpy_dtype : entry.dtype;
  const shape = entry.numpy_shape !== undefined ? entry.numpy_shape : entry.shape;
  const bytes = fs.readFileSync(path.join(payload, entry.path));  // exactly the slice's bytes
  process.stdout.write(JSON.stringify({
    format: header.format,
    slice_count: header.slice_count,
    slice: entry.name,
    dtype: dtype,
    elements: Array.isArray(shape) ? shape.reduce((a, b) => a * b, 1) : null,
    first: firstValues(bytes, dtype, 8),
    sha256: crypto.createHash('sha256').update(bytes).digest('hex'),
  }) + '\n');
  return 0;
}

process.exitCode = main(process.argv.slice(2));
