// Run face-api's FaceRecognitionNet (dlib ResNet, 128-d) on a float32 NHWC batch, for port checks.
//
// Usage: node run_face_api.mjs IN.f32 '[N,150,150,3]' OUT.f32 OUT.json [divisor=255|256]
//        [model=DIR] [chunk=16]
// IN holds RGB pixels in [0, 255]; OUT gets [N,128] descriptors (float32, little-endian).
//
// Why the dist file and the stub: face-api.node.js needs tfjs-node (a native binary that cannot be
// downloaded here). face-api.node-wasm.js is a CommonJS bundle that only re-exports
// require('@tensorflow/tfjs') merged with require('@tensorflow/tfjs-backend-wasm'); resolving the
// wasm package to an empty module leaves plain @tensorflow/tfjs with its pure-JS CPU backend.
//
// Why `divisor`: face-api normalises with (x - mean) / 255, dlib itself with / 256. With
// divisor=256 the input is rescaled about the mean, x' = mean + (x - mean) * 255 / 256, so that
// face-api's arithmetic yields dlib's normalisation. The default 255 feeds the pixels unchanged.

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
const { tf } = faceapi; // the very tfjs instance face-api uses (a second copy would not interop)

const MEAN_RGB = [122.782, 117.001, 104.298];

async function main() {
  const [inPath, shapeJson, outPath, metaPath, ...extra] = process.argv.slice(2);
  const opts = Object.fromEntries(extra.map((a) => a.split('=', 2)));
  const divisor = Number(opts.divisor ?? 255);
  const modelDir = opts.model ?? path.join(here, 'node_modules/@vladmandic/face-api/model');
  const chunk = Number(opts.chunk ?? 16);
  const shape = JSON.parse(shapeJson);
  if (shape.length !== 4 || shape[3] !== 3) throw new Error(`expected NHWC RGB, got ${shapeJson}`);
  if (divisor !== 255 && divisor !== 256) throw new Error(`divisor must be 255 or 256`);

  await tf.setBackend('cpu');
  await tf.ready();
  const net = new faceapi.FaceRecognitionNet();
  await net.loadFromDisk(modelDir);

  const buf = fs.readFileSync(inPath);
  const pixels = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const [n, h, w] = shape;
  const per = h * w * 3;
  if (pixels.length !== n * per) throw new Error(`file has ${pixels.length} floats, shape says ${n * per}`);
  if (divisor === 256) {
    const k = 255 / 256;
    for (let i = 0; i < pixels.length; i += 1) {
      const m = MEAN_RGB[i % 3];
      pixels[i] = m + (pixels[i] - m) * k;
    }
  }

  const result = new Float32Array(n * 128);
  for (let start = 0; start < n; start += chunk) {
    const stop = Math.min(n, start + chunk);
    const images = [];
    for (let i = start; i < stop; i += 1) {
      images.push(tf.tensor3d(pixels.subarray(i * per, (i + 1) * per), [h, w, 3], 'float32'));
    }
    // An array input is treated as a batch: one descriptor per image, no resize at 150x150.
    const descriptors = await net.computeFaceDescriptor(images);
    descriptors.forEach((d, j) => result.set(d, (start + j) * 128));
    images.forEach((t) => t.dispose());
  }

  fs.writeFileSync(outPath, Buffer.from(result.buffer));
  fs.writeFileSync(metaPath, JSON.stringify({ shape: [n, 128], backend: tf.getBackend(), divisor }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
