#include "ort.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <cstdlib>
#include <string>

#include <memory>
#include <mutex>

namespace vitgraph {
namespace {

std::mutex g_mutex;
std::unique_ptr<Runtime> g_runtime;  // never unloaded: sessions and ORT's own statics outlive any JS object

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) ? std::string(buf) : path;
}

std::string DirName(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

}  // namespace

const char* ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Unsupported:
      return "unsupported";
    case ErrorKind::Argument:
      return "argument";
    case ErrorKind::Closed:
      return "closed";
    case ErrorKind::Runtime:
      return "runtime";
  }
  return "runtime";
}

const Runtime& LoadRuntime(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_runtime) {
    if (RealPath(path) == RealPath(g_runtime->path)) return *g_runtime;
    throw NativeError(ErrorKind::Unsupported, "ONNX Runtime is already loaded from " + g_runtime->path +
                                                  " in this process, cannot also load " + path +
                                                  " (one ONNX Runtime library per process)");
  }

  dlerror();
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    throw NativeError(ErrorKind::Unsupported,
                      "cannot load the ONNX Runtime library " + path + ": " + (why ? why : "unknown dlopen error"));
  }
  using GetApiBaseFn = const OrtApiBase* (*)();
  auto get_api_base = reinterpret_cast<GetApiBaseFn>(dlsym(handle, "OrtGetApiBase"));
  if (!get_api_base) {
    dlclose(handle);
    throw NativeError(ErrorKind::Unsupported, path + " does not export OrtGetApiBase: not an ONNX Runtime library");
  }
  const OrtApiBase* base = get_api_base();
  const std::string version = base->GetVersionString();
  const OrtApi* api = base->GetApi(ORT_API_VERSION);
  if (!api) {
    dlclose(handle);
    throw NativeError(ErrorKind::Unsupported, "ONNX Runtime " + version + " at " + path +
                                                  " does not serve C API version " +
                                                  std::to_string(ORT_API_VERSION) +
                                                  ", which this addon was built for; use ONNX Runtime 1." +
                                                  std::to_string(ORT_API_VERSION) + " or newer");
  }

  auto rt = std::make_unique<Runtime>();
  rt->path = path;
  rt->version = version;
  rt->api = api;
  // Like ORT, which looks for provider libraries next to the file it was loaded as (no symlinks resolved).
  Dl_info info{};
  rt->core_dir =
      DirName(dladdr(reinterpret_cast<void*>(get_api_base), &info) && info.dli_fname ? info.dli_fname : path.c_str());
  // ORT keeps one OrtEnv per process; when onnxruntime-node already made one in this same library,
  // CreateEnv hands back that instance (its logging settings win).
  OrtStatus* status = api->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "vitgraph", &rt->env);
  if (status) {
    const std::string msg = api->GetErrorMessage(status);
    api->ReleaseStatus(status);
    throw NativeError(ErrorKind::Runtime, "CreateEnv: " + msg);
  }
  // ONNX Runtime's usage telemetry stays off unless the user opts in (src/runtime/telemetry.ts).
  const char* telemetry = std::getenv("VITGRAPH_ORT_TELEMETRY");
  if (!(telemetry && std::string(telemetry) == "1")) {
    if (OrtStatus* off = api->DisableTelemetryEvents(rt->env)) api->ReleaseStatus(off);
  }
  g_runtime = std::move(rt);
  return *g_runtime;
}

const Runtime* LoadedRuntime() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_runtime.get();
}

const OrtApi& Api() { return *g_runtime->api; }

void Check(OrtStatus* status, const char* what) {
  if (!status) return;
  const OrtApi& api = Api();
  const std::string msg = api.GetErrorMessage(status);
  const int code = static_cast<int>(api.GetErrorCode(status));
  api.ReleaseStatus(status);
  throw NativeError(ErrorKind::Runtime, std::string(what) + ": " + msg, code);
}

std::vector<std::string> AvailableProviders() {
  char** names = nullptr;
  int count = 0;
  Check(Api().GetAvailableProviders(&names, &count), "GetAvailableProviders");
  std::vector<std::string> out(names, names + count);
  Check(Api().ReleaseAvailableProviders(names, count), "ReleaseAvailableProviders");
  return out;
}

}  // namespace vitgraph
