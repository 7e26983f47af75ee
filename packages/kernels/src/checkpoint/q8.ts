import { f16ToF32, f32ToF16 } from './half.js';

/**
 * q8_0 as llama.cpp's quantize_row_q8_0_ref: per 32 values d = amax/127 (stored as f16), q = round(x/d)
 * (halves away from zero). `scales` holds each d as the f32 value of its f16. Re-quantizing values
 * dequantized from q8_0 gives the same q and d back.
 */
export function quantizeQ8_0(data: Float32Array): {
  q: Int8Array;
  scales: Float32Array;
  halves: Uint16Array;
} {
  const blocks = data.length / 32;
  const q = new Int8Array(data.length);
  const scales = new Float32Array(blocks);
  const halves = new Uint16Array(blocks);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(data[32 * b + j]!));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    halves[b] = f32ToF16(d);
    scales[b] = f16ToF32(halves[b]!);
    for (let j = 0; j < 32; j++) {
      const x = Math.fround(data[32 * b + j]! * id);
      q[32 * b + j] = Math.sign(x) * Math.round(Math.abs(x));
    }
  }
  return { q, scales, halves };
}
