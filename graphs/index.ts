// The registry: every tower vitgraph can export, detected from config.json's model_type.

import { ModelRegistry } from '../src/model.js';
import { qwen25VL } from './qwen2.5-vl/index.js';
import { qwen2VL } from './qwen2-vl/index.js';
import { qwen35 } from './qwen3.5/index.js';
import { qwen3VL } from './qwen3-vl/index.js';

export const MODELS = new ModelRegistry([qwen3VL, qwen35, qwen25VL, qwen2VL]);
