// Run face-api's FaceLandmark68Net (68-point landmarks) on a float32 NHWC batch, for port checks.
//
// Usage: node run_face_landmarks.mjs IN.f32 '[N,S,S,3]' OUT.f32 OUT.json [out=pixels|raw]
//        [model=DIR] [chunk=16]
// IN holds square RGB crops, pixels in [0, 255]. OUT gets float32, little-endian:
//   out=pixels (default): [N,68,2] landmark positions (x, y) in the crop's pixels, as
//     detectLandmarks reports them (face-api resizes the crop to 112x112 itself);
//   out=raw: [N,136] the fully connected layer's outputs (runNet), before any decoding.
//
// The wasm stub is the one of run_face_api.mjs: face-api.node-wasm.js re-exports @tensorflow/tfjs
// merged with @tensorflow/tfjs-backend-wasm; resolving the latter to an empty module leaves the
// pure-JS CPU backend, so no native binary is needed.

import fs from 'node:fs';
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

const WASM = '@tensorflow/tfjs-backend-wasm';
const stubKey = path.join(here, '__stub_tfjs_backend_wasm__.js');
const stub = new Module(stubKey);
stub.exports = {};
stub.loaded = true;
Module._cache[stubKey] = stub;
const resolve = Module._resolveFilename;
Module._resolveFilename = function resolveWithStub(request, ...rest) {
  return request === WASM ? stubKey : resolve.call(this, request, ...rest);
};

const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
const { tf } = faceapi; // the tfjs instance face-api uses

const POINTS = 68;

async function landmarksOf(net, images, mode) {
  if (mode === 'raw') {
    const input = await faceapi.toNetInput(images); // an array: one batch, no resize at 112
    const out = net.runNet(input);
    const values = await out.data();
    out.dispose();
    return values;
  }
  const found = await net.detectLandmarks(images); // an array input gives one result per image
  const values = new Float32Array(images.length * POINTS * 2);
  found.forEach((marks, j) => marks.positions.forEach((p, k) => {
    values[(j * POINTS + k) * 2] = p.x;
    values[(j * POINTS + k) * 2 + 1] = p.y;
  }));
  return values;
}

async function main() {
  const [inPath, shapeJson, outPath, metaPath, ...extra] = process.argv.slice(2);
  const opts = Object.fromEntries(extra.map((a) => a.split('=', 2)));
  const mode = opts.out ?? 'pixels';
  const modelDir = opts.model ?? path.join(here, 'node_modules/@vladmandic/face-api/model');
  const chunk = Number(opts.chunk ?? 16);
  const shape = JSON.parse(shapeJson);
  if (shape.length !== 4 || shape[3] !== 3 || shape[1] !== shape[2]) {
    throw new Error(`expected square NHWC RGB crops, got ${shapeJson}`);
  }
  if (mode !== 'pixels' && mode !== 'raw') throw new Error(`out must be pixels or raw, not ${mode}`);

  await tf.setBackend('cpu');
  await tf.ready();
  const net = new faceapi.FaceLandmark68Net();
  await net.loadFromDisk(modelDir);

  const buf = fs.readFileSync(inPath);
  const pixels = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const [n, h, w] = shape;
  const per = h * w * 3;
  if (pixels.length !== n * per) throw new Error(`file has ${pixels.length} floats, shape says ${n * per}`);

  const width = POINTS * 2;
  const result = new Float32Array(n * width);
  for (let start = 0; start < n; start += chunk) {
    const stop = Math.min(n, start + chunk);
    const images = [];
    for (let i = start; i < stop; i += 1) {
      images.push(tf.tensor3d(pixels.subarray(i * per, (i + 1) * per), [h, w, 3], 'float32'));
    }
    result.set(await landmarksOf(net, images, mode), start * width);
    images.forEach((t) => t.dispose());
  }

  fs.writeFileSync(outPath, Buffer.from(result.buffer));
  const outShape = mode === 'raw' ? [n, width] : [n, POINTS, 2];
  fs.writeFileSync(metaPath, JSON.stringify({ shape: outShape, backend: tf.getBackend(), mode }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
