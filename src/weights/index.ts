// Weights: safetensors files, float conversion, checkpoints as the vision tower's tensors, strict binding.

export {
  encodeSafetensorsHeader,
  fromSafetensorsDType,
  readSafetensors,
  readSafetensorsHeader,
  SAFETENSORS_BYTES,
  toSafetensorsDType,
  writeSafetensors,
  writeSafetensorsStream,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsHeader,
  type SafetensorsSpec,
} from './safetensors.js';
export { bf16ToF32, convertFloatBytes, f16ToF32, f32ToBf16, f32ToF16, type FloatSource, type FloatTarget } from '../dtype.js';
export { Checkpoint, visionPrefix, type CheckpointTensor, type VisionPrefix } from './checkpoint.js';
export { WeightBinder, type BoundWeight } from './bind.js';
