# The optional native backend: a thin N-API layer over the ONNX Runtime C API.
# ONNX Runtime is NOT linked: the addon dlopen()s libonnxruntime at run time, so only the C API
# headers are needed to build (found by ort-include.cjs; override with ORT_INCLUDE_DIR).
# Build: node scripts/build-native.mjs  (or node-gyp rebuild --directory src/runtime/native)
{
  'targets': [
    {
      'target_name': 'vitgraph_native',
      'sources': ['addon.cc', 'ort.cc', 'cuda_runtime.cc', 'session.cc'],
      'include_dirs': [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!(node ort-include.cjs)",
      ],
      'defines': ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS', 'NODE_ADDON_API_DISABLE_DEPRECATED'],
      'cflags!': ['-fno-exceptions', '-fno-rtti'],
      'cflags_cc!': ['-fno-exceptions', '-fno-rtti'],
      'cflags_cc': ['-std=c++17', '-O2', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'libraries': ['-ldl', '-lpthread'],
      'conditions': [
        ["OS!='linux'", {'sources!': ['cuda_runtime.cc']}],
      ],
    },
  ],
}
