export * from './elementwise.js';
export * from './linalg.js';
export * from './shape.js';
export * from './reduce.js';
export * from './nn.js';
export * from './attention.js';
export * from './control.js';
export * from './quant.js';
