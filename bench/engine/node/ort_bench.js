// ONNX Runtime peer of bench/engine: times one ONNX file on one input, prints one JSON line.
//
//   node ort_bench.js WORK CASE [--threads 2] [--warmup 2] [--runs 5] [--output Y.f32]
//
// Reads WORK/cases/CASE/model.onnx (torch.onnx.export of the same model and weights) and
// WORK/cases/CASE/input.f32. Session: CPU provider, all graph optimisations, intra-op threads
// as given, one inter-op thread, sequential execution, no spinning after a run.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

function parseArgs(argv) {
  const args = {threads: 2, warmup: 2, runs: 5, output: null};
  const positional = [];
  for (let i = 0; i < argv.length; ++i) {
    const key = argv[i];
    if (key.startsWith('--')) {
      const value = argv[++i];
      const name = key.slice(2);
      args[name] = name === 'output' ? value : Number(value);
    } else {
      positional.push(key);
    }
  }
  if (positional.length !== 2) throw new Error('usage: ort_bench.js WORK CASE [options]');
  [args.work, args.case] = positional;
  return args;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const dir = path.join(args.work, 'cases', args.case);
  const spec = JSON.parse(fs.readFileSync(path.join(dir, 'case.json'), 'utf8'));
  const bytes = fs.readFileSync(path.join(dir, 'input.f32'));
  const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'), {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: args.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    extra: {session: {intra_op: {allow_spinning: '0'}}},
  });
  const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', data, spec.input_shape)};
  let result;
  for (let i = 0; i < args.warmup; ++i) result = await session.run(feeds);
  const times = [];
  for (let i = 0; i < args.runs; ++i) {
    const start = process.hrtime.bigint();
    result = await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  if (args.output) {
    const y = result[session.outputNames[0]].data;
    fs.writeFileSync(args.output, Buffer.from(y.buffer, y.byteOffset, y.byteLength));
  }
  const version = require('onnxruntime-node/package.json').version;
  console.log(JSON.stringify({peer: 'onnxruntime', threads: args.threads, warmup: args.warmup,
                              runs: args.runs, median_ms: median(times),
                              times_ms: times.map((t) => Math.round(t * 1000) / 1000),
                              onnxruntime: version}));
}

main().catch((e) => {
  console.error('ort_bench: ' + e.message);
  process.exit(1);
});
