// ONNX Runtime ≥ 1.30 records usage telemetry: a persistent device ID and an event database under
// ~/.cache/Microsoft/DeveloperTools/.onnxruntime/, uploaded to Microsoft. vitgraph turns it off for
// every ONNX Runtime it loads, before the library creates its environment; the native addon also
// calls DisableTelemetryEvents on its env (src/runtime/native/ort.cc). VITGRAPH_ORT_TELEMETRY=1 opts
// back in. Imported for its effect, ahead of onnxruntime-node and the addon.

/** Set to 1 to leave ONNX Runtime's telemetry as ONNX Runtime ships it. */
export const TELEMETRY_OPT_IN = 'VITGRAPH_ORT_TELEMETRY';

/** Whether ONNX Runtime may record telemetry in this process. */
export const telemetryAllowed = (env: NodeJS.ProcessEnv = process.env): boolean => env[TELEMETRY_OPT_IN] === '1';

// ONNX Runtime reads ORT_DISABLE_TELEMETRY when it creates its environment; Node's process.env
// writes through to the C environment, so this reaches a library loaded later in this process and
// every child process. A value the user set stays.
if (!telemetryAllowed()) process.env.ORT_DISABLE_TELEMETRY ??= '1';
