// The segment-restricted attention formulations live in graphs/shared/attention.ts; Qwen3-VL
// attends per frame group of each item (spec §3.4), the segments of `patchCoordinates`.

export { ATTENTION, denseMaskedAttention, loopedAttention, type AttentionKind } from '../shared/attention.js';
