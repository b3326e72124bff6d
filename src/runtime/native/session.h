// One ONNX Runtime session served by one dedicated native thread.
//
// Every ORT and CUDA call for a session (create, allocate, copy, RunWithBinding, release) happens on
// that session's worker thread, in the order the requests were made (FIFO). ORT keeps captured CUDA
// graphs per host thread, so a fixed thread is what makes graph replay work; it also keeps Node's
// event loop free. Results come back to JavaScript through a thread-safe function.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cuda_runtime.h"
#include "ort.h"

namespace vitgraph {

struct Job;
class Session;

// Runs on the JS thread for each finished job (env is null when Node tears the function down).
void CompleteJob(Napi::Env env, Napi::Function, Session* self, Job* job);
using Completion = Napi::TypedThreadSafeFunction<Session, Job, CompleteJob>;

struct SessionConfig {
  std::string model_path;
  bool cuda = false;
  int device_id = 0;
  int threads = 0;          // 0: ORT's default
  int optimization = 99;    // GraphOptimizationLevel
  int log_level = -1;       // OrtLoggingLevel, -1: ORT's default
  std::string profile_prefix;  // empty: no profiling
  std::vector<std::pair<std::string, std::string>> session_entries;  // AddSessionConfigEntry
  std::vector<std::pair<std::string, std::string>> cuda_options;      // UpdateCUDAProviderOptions
};

struct PortSpec {
  std::string name;
  ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  std::vector<int64_t> shape;
  size_t bytes = 0;
};

// A tensor bound once and reused by every run of its binding.
struct Port {
  PortSpec spec;
  OwnedValue value;
  void* data = nullptr;  // host memory (CPU) or device memory (CUDA)
};

struct BindingState {
  OwnedIoBinding io;
  OwnedRunOptions run_options;
  std::vector<Port> inputs;
  std::vector<Port> outputs;
  bool graph = false;  // runs with a gpu_graph_id ≥ 1 (ORT captures a CUDA graph for it)
  int runs = 0;        // RunWithBinding calls so far
};

// What only the worker thread touches.
struct Core {
  SessionConfig config;
  OwnedSession session;
  OrtAllocator* cpu_allocator = nullptr;  // ORT's default CPU allocator (not owned)
  OwnedAllocator device_allocator;        // the session's "Cuda" allocator
  OwnedAllocator pinned_allocator;        // the session's "CudaPinned" allocator, if it has one
  const CudaRuntime* cudart = nullptr;
  void* staging = nullptr;  // pinned host buffer for transfers, from pinned_allocator
  size_t staging_bytes = 0;
  std::map<uint32_t, std::unique_ptr<BindingState>> bindings;
};

class Session : public Napi::ObjectWrap<Session> {
 public:
  static Napi::Function Define(Napi::Env env);

  // new Session(modelPath, options) — starts the worker thread; open() creates the ORT session.
  explicit Session(const Napi::CallbackInfo& info);
  ~Session() override;

  friend void CompleteJob(Napi::Env env, Napi::Function, Session* self, Job* job);

 private:
  enum class State { Open, Closing, Stopped };

  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Bind(const Napi::CallbackInfo& info);
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value ReleaseBinding(const Napi::CallbackInfo& info);
  Napi::Value EndProfiling(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Pending(const Napi::CallbackInfo& info);

  // JS thread
  Napi::Value Submit(Napi::Env env, std::unique_ptr<Job> job);
  void Complete(Napi::Env env, Job* job);
  void Settle(Napi::Env env);
  void ShutdownSync();
  static void OnEnvCleanup(void* self);

  // worker thread
  void WorkerMain();
  void Execute(Job& job);        // takes the process-wide CUDA capture lock (see session.cc)
  void ExecuteLocked(Job& job);
  void DoOpen(Job& job);
  void DoBind(Job& job);
  void DoRun(Job& job);
  void DoClose();
  Port MakePort(const PortSpec& spec, bool on_device);
  void CopyIn(const Port& port, const void* src, size_t bytes);
  void CopyOut(const Port& port, void* dst, size_t bytes);

  napi_env env_ = nullptr;
  Completion completion_;
  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Job>> queue_;  // guarded by mutex_

  State state_ = State::Open;  // JS thread
  size_t pending_ = 0;         // JS thread: submitted, not yet settled
  uint32_t next_binding_ = 1;  // JS thread
  bool cleanup_hook_ = false;  // JS thread

  Core core_;  // worker thread only
};

}  // namespace vitgraph
