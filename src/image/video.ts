// Which frames of a clip are kept (spec §4.2.1).
// Mirrors transformers `Qwen3VLVideoProcessor.sample_frames` (fps-based branch, min 4 / max 768
// frames from the shipped video_preprocessor_config.json).

import { invalidArgument } from '../errors.js';
import { roundHalfEven } from './smart-resize.js';

export const DEFAULT_TARGET_FPS = 2;
export const MIN_SAMPLED_FRAMES = 4;
export const MAX_SAMPLED_FRAMES = 768;

/**
 * Indices of the frames kept when a clip of `total` frames recorded at `sourceFps` is sampled at
 * `targetFps`: k = int(total / sourceFps · targetFps), clamped to [4, 768] and to `total`, spread
 * evenly with numpy's `linspace(0, total − 1, k)` rounded half-to-even.
 */
export function sampleFrameIndices(total: number, sourceFps: number, targetFps = DEFAULT_TARGET_FPS): number[] {
  if (!Number.isInteger(total) || total < 1) throw invalidArgument('video frame count', 'a positive integer', total);
  if (!(sourceFps > 0) || !Number.isFinite(sourceFps)) throw invalidArgument('video fps', 'a positive finite number', sourceFps);
  if (!(targetFps > 0) || !Number.isFinite(targetFps)) throw invalidArgument('targetFps', 'a positive finite number', targetFps);
  const wanted = Math.trunc((total / sourceFps) * targetFps);
  const count = Math.min(Math.max(wanted, MIN_SAMPLED_FRAMES), MAX_SAMPLED_FRAMES, total);
  return linspace(0, total - 1, count).map(roundHalfEven);
}

/**
 * The clip's frame rate from per-frame timestamps (seconds): (n − 1) / (last − first), the rate at
 * which n evenly spaced frames span those times. Undefined when it cannot be told (one frame, zero span).
 */
export function fpsFromTimestamps(timestamps: readonly number[]): number | undefined {
  for (let i = 0; i < timestamps.length; i++) {
    const t = timestamps[i]!;
    if (!Number.isFinite(t) || (i > 0 && t < timestamps[i - 1]!)) {
      throw invalidArgument(`video timestamps[${i}]`, 'finite, non-decreasing seconds', t);
    }
  }
  const span = timestamps.length > 1 ? timestamps[timestamps.length - 1]! - timestamps[0]! : 0;
  return span > 0 ? (timestamps.length - 1) / span : undefined;
}

/** Start time (seconds) of each frame of an animation whose frames last `delaysMs`. */
export function timestampsFromDelays(delaysMs: readonly number[]): number[] {
  const timestamps: number[] = [];
  let elapsed = 0;
  for (const delay of delaysMs) {
    timestamps.push(elapsed / 1000);
    elapsed += Math.max(0, delay);
  }
  return timestamps;
}

/** numpy `linspace(start, stop, num)` with endpoint: i·step + start, the last value set to stop exactly. */
function linspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const values = Array.from({ length: num }, (_, i) => (step === 0 ? (i / (num - 1)) * (stop - start) : i * step) + start);
  values[num - 1] = stop;
  return values;
}
