// The ONNX Runtime C API, reached through a library opened at run time (never linked).
#pragma once

#include <onnxruntime_c_api.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace vitgraph {

// How an error should surface in JavaScript; native.ts maps each kind to a VitgraphError code.
enum class ErrorKind {
  Unsupported,  // library, provider, CUDA runtime or device missing → 'unsupported'
  Argument,     // the caller passed something that cannot work → 'invalid_argument'
  Closed,       // the session or binding was closed → 'runtime' (reason closed)
  Runtime,      // ONNX Runtime or CUDA failed → 'runtime'
};

const char* ErrorKindName(ErrorKind kind);

class NativeError : public std::runtime_error {
 public:
  NativeError(ErrorKind kind, const std::string& message, int ort_code = 0)
      : std::runtime_error(message), kind(kind), ort_code(ort_code) {}
  ErrorKind kind;
  int ort_code;  // OrtErrorCode, 0 when the error did not come from ORT
};

// One ONNX Runtime library per process: the first Load() decides which file.
struct Runtime {
  std::string path;     // as requested
  std::string version;  // OrtApiBase::GetVersionString
  std::string core_dir; // directory of the loaded library (where ORT looks for provider libraries)
  const OrtApi* api = nullptr;
  OrtEnv* env = nullptr;
};

// Opens `path` (dlopen + dlsym("OrtGetApiBase")), requests ORT_API_VERSION and creates the OrtEnv.
// Throws NativeError(Unsupported) naming the path and the loader's message.
const Runtime& LoadRuntime(const std::string& path);
// The runtime loaded earlier, or nullptr.
const Runtime* LoadedRuntime();
// The API table; only valid after LoadRuntime().
const OrtApi& Api();

// Throws NativeError(Runtime) "what: <ORT message>" when status is not null (and releases it).
void Check(OrtStatus* status, const char* what);

std::vector<std::string> AvailableProviders();

// Releases an ORT object through its Release function when it goes out of scope.
template <typename T, auto Release>
class Owned {
 public:
  Owned() = default;
  explicit Owned(T* p) : p_(p) {}
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  Owned(Owned&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  Owned& operator=(Owned&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = o.p_;
      o.p_ = nullptr;
    }
    return *this;
  }
  ~Owned() { reset(); }
  void reset() {
    if (p_) (Api().*Release)(p_);
    p_ = nullptr;
  }
  T* get() const { return p_; }
  T** put() {
    reset();
    return &p_;
  }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  T* p_ = nullptr;
};

using OwnedSessionOptions = Owned<OrtSessionOptions, &OrtApi::ReleaseSessionOptions>;
using OwnedSession = Owned<OrtSession, &OrtApi::ReleaseSession>;
using OwnedMemoryInfo = Owned<OrtMemoryInfo, &OrtApi::ReleaseMemoryInfo>;
using OwnedAllocator = Owned<OrtAllocator, &OrtApi::ReleaseAllocator>;
using OwnedValue = Owned<OrtValue, &OrtApi::ReleaseValue>;
using OwnedIoBinding = Owned<OrtIoBinding, &OrtApi::ReleaseIoBinding>;
using OwnedRunOptions = Owned<OrtRunOptions, &OrtApi::ReleaseRunOptions>;
using OwnedTypeInfo = Owned<OrtTypeInfo, &OrtApi::ReleaseTypeInfo>;
using OwnedCudaOptions = Owned<OrtCUDAProviderOptionsV2, &OrtApi::ReleaseCUDAProviderOptions>;

}  // namespace vitgraph
