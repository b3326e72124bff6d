// vitgraph_native: a thin N-API layer over the ONNX Runtime C API (see native.ts for the surface).
#include <napi.h>

#include "ort.h"
#include "session.h"

namespace vitgraph {
namespace {

Napi::Object RuntimeInfo(Napi::Env env, const Runtime& rt) {
  auto info = Napi::Object::New(env);
  info.Set("path", rt.path);
  info.Set("coreDir", rt.core_dir);
  info.Set("version", rt.version);
  info.Set("apiVersion", ORT_API_VERSION);
  const auto providers = AvailableProviders();
  auto list = Napi::Array::New(env, providers.size());
  for (size_t i = 0; i < providers.size(); ++i) list.Set(i, providers[i]);
  info.Set("providers", list);
  return info;
}

Napi::Error ToJs(Napi::Env env, const NativeError& e) {
  auto error = Napi::Error::New(env, e.what());
  error.Set("kind", Napi::String::New(env, ErrorKindName(e.kind)));
  return error;
}

// loadRuntime(path) → RuntimeInfo; opens the library once per process (see ort.h).
Napi::Value LoadRuntimeJs(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "loadRuntime(path: string)");
  try {
    return RuntimeInfo(env, LoadRuntime(info[0].As<Napi::String>().Utf8Value()));
  } catch (const NativeError& e) {
    throw ToJs(env, e);
  }
}

// runtimeInfo() → RuntimeInfo | null
Napi::Value RuntimeInfoJs(const Napi::CallbackInfo& info) {
  const Runtime* rt = LoadedRuntime();
  if (!rt) return info.Env().Null();
  try {
    return RuntimeInfo(info.Env(), *rt);
  } catch (const NativeError& e) {
    throw ToJs(info.Env(), e);
  }
}

}  // namespace
}  // namespace vitgraph

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  using namespace vitgraph;
  exports.Set("apiVersion", Napi::Number::New(env, ORT_API_VERSION));
  exports.Set("loadRuntime", Napi::Function::New<LoadRuntimeJs>(env, "loadRuntime"));
  exports.Set("runtimeInfo", Napi::Function::New<RuntimeInfoJs>(env, "runtimeInfo"));
  exports.Set("NativeSessionHandle", Session::Define(env));
  return exports;
}

NODE_API_MODULE(vitgraph_native, InitAddon)
