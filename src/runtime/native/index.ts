// The optional native backend (see session.ts): what the rest of vitgraph may use of it.

export { loadNativeRuntime, nativeAddonCandidates, nativeAddonFile, nativeAvailable, resolveOrtLibrary } from './loader.js';
export type { NativeAddonFile, NativeAddonSource } from './loader.js';
export { createNativeRunner, NativeBinding, NativeSession } from './session.js';
export type {
  GraphOptimizationLevel,
  NativeArrays,
  NativeBindingSpec,
  NativeBindOptions,
  NativeCudaApi,
  NativeDevice,
  NativeLogLevel,
  NativeRuntimeInfo,
  NativeSessionOptions,
  NativeTensorData,
  NativeTensorSpec,
  NativeTransfer,
  NativeValueInfo,
} from './surface.js';
