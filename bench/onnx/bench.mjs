// ONNX Runtime (onnxruntime-node, CPU execution provider) side of m4's encoder-path comparison.
//
//   node bench.mjs check --model vit.onnx --expect m4.json [--tol 1e-4] [--save ort.json] img0.npy ...
//       runs the images as one batch and compares ORT's embeddings with m4's (the JSON printed by
//       `m4fw run --json` for the same .npy files, same order); exits 1 if max |diff| > tol.
//       --save writes ORT's embeddings in the same JSON shape (for oracle_check.py).
//   node bench.mjs time --model vit.onnx [--batches 1,8] [--min-time 10] [--warmup 2] [--threads 2]
//       images/s per batch size, printed as `ort image batch B: X inputs/s` (run.sh parses it).
//
// Session settings are the ones the comparison promises: CPU EP only, intraOpNumThreads = m4's
// thread count (2 on the 2-core machine), one inter-op thread with sequential execution, graph
// optimisation level "all" (ORT's own fusions: MatMul+Add, Gelu, LayerNorm, ...).
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import process from 'node:process';

import ort from 'onnxruntime-node';

function die(msg) {
  console.error(`bench.mjs: ${msg}`);
  process.exit(2);
}

// Minimal .npy reader for what export_onnx.py writes: little-endian float32, C order.
function readNpyF32(path) {
  const buf = readFileSync(path);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') die(`${path}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', hstart, hstart + hlen);
  if (!/'descr':\s*'<f4'/.test(header)) die(`${path}: dtype must be '<f4' (header ${header.trim()})`);
  if (/'fortran_order':\s*True/.test(header)) die(`${path}: must be C-ordered`);
  const m = header.match(/'shape':\s*\(([^)]*)\)/);
  if (!m) die(`${path}: no shape in header`);
  const shape = m[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const off = hstart + hlen;
  if (buf.length - off !== n * 4) die(`${path}: holds ${buf.length - off} bytes, shape needs ${n * 4}`);
  // Copy into an aligned Float32Array (the Buffer's offset need not be 4-aligned).
  const data = new Float32Array(n);
  new Uint8Array(data.buffer).set(buf.subarray(off, off + n * 4));
  return { shape, data };
}

function parseArgs(argv) {
  const opts = { positional: [] };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a.startsWith('--')) {
      if (i + 1 >= argv.length) die(`option ${a} needs a value`);
      opts[a.slice(2)] = argv[++i];
    } else {
      opts.positional.push(a);
    }
  }
  return opts;
}

async function openSession(modelPath, threads) {
  const options = {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  };
  try {
    return await ort.InferenceSession.create(modelPath, options);
  } catch (e) {
    die(`cannot load ${modelPath}: ${e.message}`);
  }
}

// [S, S, 3] of the model's input, read from the session's metadata (dims after the batch).
function imageDims(session) {
  const meta = session.inputMetadata?.[0];
  const dims = meta?.shape?.slice(1);
  if (!dims || dims.some((d) => typeof d !== 'number')) die('cannot read the model input shape');
  return dims;
}

async function check(opts) {
  const files = opts.positional;
  if (!opts.model || !opts.expect || files.length === 0) die('check needs --model, --expect and .npy files');
  const tol = Number(opts.tol ?? 1e-4);
  const session = await openSession(opts.model, Number(opts.threads ?? 2));
  const dims = imageDims(session);
  const per = dims.reduce((a, b) => a * b, 1);
  const batch = new Float32Array(per * files.length);
  files.forEach((f, i) => {
    const { shape, data } = readNpyF32(f);
    if (shape.join(',') !== dims.join(',')) die(`${f}: shape [${shape}] but the model takes [${dims}]`);
    batch.set(data, i * per);
  });
  const out = await session.run({ image: new ort.Tensor('float32', batch, [files.length, ...dims]) });
  const emb = out.embedding;
  const E = emb.dims[1];
  let expected;
  try {
    expected = JSON.parse(readFileSync(opts.expect, 'utf8'));
  } catch (e) {
    die(`${opts.expect}: not the JSON of m4fw run --json (${e.message})`);
  }
  if (!Array.isArray(expected) || expected.length !== files.length)
    die(`${opts.expect}: expected ${files.length} results, found ${expected?.length}`);
  if (opts.save) {
    const rows = files.map((f, i) => ({ input: f, embedding: Array.from(emb.data.subarray(i * E, (i + 1) * E)) }));
    writeFileSync(opts.save, JSON.stringify(rows, null, 1));
  }
  let maxDiff = 0;
  let worst = '';
  files.forEach((f, i) => {
    const want = expected[i].embedding;
    if (!Array.isArray(want) || want.length !== E) die(`${opts.expect}[${i}]: embedding of length ${E} missing`);
    let d = 0, dot = 0;
    for (let k = 0; k < E; ++k) {
      const got = emb.data[i * E + k];
      d = Math.max(d, Math.abs(got - want[k]));
      dot += got * want[k];
    }
    console.log(`check ${f}: max |ort - m4| = ${d.toExponential(3)}, cosine = ${dot.toFixed(7)}`);
    if (d > maxDiff) (maxDiff = d), (worst = f);
  });
  const ok = maxDiff <= tol && Number.isFinite(maxDiff);
  console.log(`check: max |ort - m4| over ${files.length} images x ${E} = ${maxDiff.toExponential(3)} ` +
              `(tolerance ${tol}) ${ok ? 'OK' : 'FAILED'}`);
  if (!ok) {
    console.error(`bench.mjs: ONNX Runtime and m4 disagree (worst ${worst}); the speed comparison would be meaningless`);
    process.exit(1);
  }
}

async function time(opts) {
  if (!opts.model) die('time needs --model');
  const threads = Number(opts.threads ?? 2);
  const minTime = Number(opts['min-time'] ?? 10);
  const warmup = Number(opts.warmup ?? 2);
  const batches = String(opts.batches ?? '1,8').split(',').map(Number);
  const session = await openSession(opts.model, threads);
  const dims = imageDims(session);
  const per = dims.reduce((a, b) => a * b, 1);
  console.log(`onnxruntime-node ${ort.env.versions?.node ?? '?'} · cpu EP · intraOpNumThreads ${threads} · ` +
              `graph optimisation all · warm-up ${warmup} s · min time ${minTime} s`);
  for (const B of batches) {
    // One input tensor built outside the timed loop, as m4fw bench model builds its batch once.
    // Same deterministic pattern as m4fw bench model's signal: 0.01·((k·7) mod 61) − 0.3.
    const data = new Float32Array(per * B);
    for (let b = 0; b < B; ++b)
      for (let k = 0; k < per; ++k) data[b * per + k] = 0.01 * ((k * 7) % 61) - 0.3;
    const feeds = { image: new ort.Tensor('float32', data, [B, ...dims]) };
    // Warm-up: the first runs allocate the arena and pay one-off costs; run at least one.
    let t0 = performance.now();
    do await session.run(feeds);
    while ((performance.now() - t0) / 1000 < warmup);
    let reps = 0;
    t0 = performance.now();
    let s = 0;
    do {
      await session.run(feeds);
      ++reps;
      s = (performance.now() - t0) / 1000;
    } while (s < minTime);
    console.log(`ort image batch ${B}: ${((reps * B) / s).toFixed(2)} inputs/s (${reps} runs in ${s.toFixed(1)} s)`);
  }
}

const [cmd, ...rest] = process.argv.slice(2);
const opts = parseArgs(rest);
if (cmd === 'check') await check(opts);
else if (cmd === 'time') await time(opts);
else die('usage: node bench.mjs check|time --model M.onnx ... (see the comment at the top)');
