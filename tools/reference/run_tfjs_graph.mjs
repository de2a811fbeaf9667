// Run a TF.js graph model in the original runtime (@tensorflow/tfjs, pure JS CPU backend).
//
// Used only to check the torch executor (facexplain.backbones.tfjs_graph) against TF.js.
// argv: <in.f32> <JSON shape, NHWC> <out.f32> <out meta.json> <model.json> <output node name>
// The input is raw little-endian float32; the output node's value is written the same way
// (in TF's own layout, NHWC for spatial maps) and its shape goes to the meta file.
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

function readArtifacts(modelJsonPath) {
  // tfjs without tfjs-node has no file:// loader, so build the artifacts by hand.
  const model = JSON.parse(fs.readFileSync(modelJsonPath, 'utf8'));
  const dir = path.dirname(modelJsonPath);
  const weightSpecs = [];
  const buffers = [];
  for (const group of model.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return {
    modelTopology: model.modelTopology,
    format: model.format,
    generatedBy: model.generatedBy,
    convertedBy: model.convertedBy,
    signature: model.signature,
    userDefinedMetadata: model.userDefinedMetadata,
    weightSpecs,
    weightData,
  };
}

async function main() {
  const [inPath, shapeJson, outPath, metaPath, modelJsonPath, nodeName] = process.argv.slice(2);
  if (!nodeName) throw new Error('usage: in.f32 shape out.f32 meta.json model.json node');
  await tf.setBackend('cpu');
  await tf.ready();
  const shape = JSON.parse(shapeJson);
  const raw = fs.readFileSync(inPath);
  const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const model = await tf.loadGraphModel(tf.io.fromMemory(readArtifacts(modelJsonPath)));
  const input = tf.tensor(data, shape, 'float32');
  const output = model.execute(input, nodeName);
  const values = await output.data();
  const f32 = Float32Array.from(values);
  fs.writeFileSync(outPath, Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength));
  fs.writeFileSync(metaPath, JSON.stringify({ shape: output.shape }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
