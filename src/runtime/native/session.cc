#include "session.h"

#include <onnxruntime_run_options_config_keys.h>

#include <cstring>
#include <optional>
#include <shared_mutex>

namespace vitgraph {

struct ValueInfo {
  std::string name;
  int type = -1;  // ONNXTensorElementDataType, -1 when the value is not a tensor
  std::vector<int64_t> dims;
  std::vector<std::string> symbols;  // dim_param per dim ("" when none)
};

struct Job {
  enum class Kind { Open, Bind, Run, ReleaseBinding, EndProfiling, Close };
  explicit Job(Kind kind) : kind(kind) {}

  Kind kind;
  std::optional<Napi::Promise::Deferred> deferred;  // absent for the synchronous shutdown
  uint32_t binding = 0;

  // Bind
  std::vector<PortSpec> input_specs, output_specs;
  std::optional<int64_t> graph_id;
  // Run: caller memory, kept alive by `keep` until the job settles on the JS thread
  std::vector<std::pair<const void*, size_t>> sources;
  std::vector<std::pair<void*, size_t>> targets;
  std::vector<Napi::ObjectReference> keep;

  // results
  std::string text;
  std::string cuda_api;  // Open on CUDA: how the EP was added
  std::vector<ValueInfo> inputs, outputs;

  // failure
  bool failed = false;
  ErrorKind error_kind = ErrorKind::Runtime;
  std::string message;
  int ort_code = 0;

  // When Node tears down, references may no longer be deleted through the environment.
  void Abandon() {
    for (auto& ref : keep) ref.SuppressDestruct();
  }
};

namespace {

// ORT captures CUDA graphs with cudaStreamCaptureModeGlobal: while one thread captures, a CUDA call
// from any other thread that may synchronize (cudaMalloc, cudaMemcpy, ...) breaks the capture. So
// every CUDA job of every session holds this lock shared, and a run that may capture (the first
// kCaptureRuns runs of a graph binding) holds it exclusively.
std::shared_mutex g_cuda_capture;
constexpr int kCaptureRuns = 3;  // ORT: 2 warm-up runs per gpu_graph_id, capture on the 3rd

[[noreturn]] void ThrowArgument(const std::string& message) { throw NativeError(ErrorKind::Argument, message); }

std::vector<std::pair<std::string, std::string>> StringEntries(const Napi::Value& value, const char* what) {
  std::vector<std::pair<std::string, std::string>> out;
  if (value.IsUndefined() || value.IsNull()) return out;
  if (!value.IsObject()) ThrowArgument(std::string(what) + ": expected an object of strings");
  const auto obj = value.As<Napi::Object>();
  const auto keys = obj.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const auto key = keys.Get(i).ToString().Utf8Value();
    const auto v = obj.Get(key);
    if (!v.IsString()) ThrowArgument(std::string(what) + "." + key + ": expected a string");
    out.emplace_back(key, v.As<Napi::String>().Utf8Value());
  }
  return out;
}

int IntField(const Napi::Object& obj, const char* key, int fallback) {
  const auto v = obj.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : fallback;
}

std::vector<PortSpec> PortSpecs(const Napi::Value& value, const char* what) {
  if (!value.IsArray()) ThrowArgument(std::string(what) + ": expected an array");
  const auto arr = value.As<Napi::Array>();
  std::vector<PortSpec> out;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    const auto obj = arr.Get(i).As<Napi::Object>();
    PortSpec spec;
    spec.name = obj.Get("name").ToString().Utf8Value();
    spec.type = static_cast<ONNXTensorElementDataType>(IntField(obj, "type", 0));
    // Element sizes come from the TypeScript side's one dtype table (src/dtype.ts), with the type.
    const int bytes_per_element = IntField(obj, "bytesPerElement", 0);
    if (bytes_per_element != 1 && bytes_per_element != 2 && bytes_per_element != 4 && bytes_per_element != 8) {
      ThrowArgument(std::string(what) + " \"" + spec.name + "\": expected bytesPerElement 1, 2, 4 or 8");
    }
    const size_t elem = static_cast<size_t>(bytes_per_element);
    const auto shape = obj.Get("shape").As<Napi::Array>();
    size_t count = 1;
    for (uint32_t d = 0; d < shape.Length(); ++d) {
      const int64_t dim = shape.Get(d).As<Napi::Number>().Int64Value();
      if (dim < 0) ThrowArgument(std::string(what) + " \"" + spec.name + "\": dims must be >= 0");
      spec.shape.push_back(dim);
      if (dim != 0 && count > SIZE_MAX / static_cast<size_t>(dim) / elem) {
        ThrowArgument(std::string(what) + " \"" + spec.name + "\": tensor too large");
      }
      count *= static_cast<size_t>(dim);
    }
    spec.bytes = count * elem;
    out.push_back(std::move(spec));
  }
  return out;
}

// The bytes a typed array spans (pointer to its first element, byte length).
std::pair<uint8_t*, size_t> TypedArrayBytes(const Napi::Value& value, const char* what, size_t index) {
  if (!value.IsTypedArray()) ThrowArgument(std::string(what) + " " + std::to_string(index) + ": expected a TypedArray");
  const auto arr = value.As<Napi::TypedArray>();
  auto* base = static_cast<uint8_t*>(arr.ArrayBuffer().Data());
  return {base + arr.ByteOffset(), arr.ByteLength()};
}

Napi::Value MakeError(Napi::Env env, ErrorKind kind, const std::string& message, int ort_code) {
  auto error = Napi::Error::New(env, message);
  error.Set("kind", Napi::String::New(env, ErrorKindName(kind)));
  if (ort_code != 0) error.Set("ortCode", Napi::Number::New(env, ort_code));
  return error.Value();
}

Napi::Array InfoArray(Napi::Env env, const std::vector<ValueInfo>& infos) {
  auto arr = Napi::Array::New(env, infos.size());
  for (size_t i = 0; i < infos.size(); ++i) {
    const auto& info = infos[i];
    auto obj = Napi::Object::New(env);
    obj.Set("name", info.name);
    obj.Set("type", info.type);
    auto dims = Napi::Array::New(env, info.dims.size());
    for (size_t d = 0; d < info.dims.size(); ++d) {
      if (info.dims[d] >= 0) {
        dims.Set(d, Napi::Number::New(env, static_cast<double>(info.dims[d])));
      } else if (!info.symbols[d].empty()) {
        dims.Set(d, Napi::String::New(env, info.symbols[d]));
      } else {
        dims.Set(d, Napi::Number::New(env, -1));
      }
    }
    obj.Set("dims", dims);
    arr.Set(i, obj);
  }
  return arr;
}

void CollectInfos(OrtSession* session, OrtAllocator* allocator, bool inputs, std::vector<ValueInfo>& out) {
  const OrtApi& api = Api();
  size_t count = 0;
  Check(inputs ? api.SessionGetInputCount(session, &count) : api.SessionGetOutputCount(session, &count),
        "SessionGetInputCount");
  for (size_t i = 0; i < count; ++i) {
    ValueInfo info;
    char* name = nullptr;
    Check(inputs ? api.SessionGetInputName(session, i, allocator, &name)
                 : api.SessionGetOutputName(session, i, allocator, &name),
          "SessionGetInputName");
    info.name = name;
    Check(api.AllocatorFree(allocator, name), "AllocatorFree");
    OwnedTypeInfo type_info;
    Check(inputs ? api.SessionGetInputTypeInfo(session, i, type_info.put())
                 : api.SessionGetOutputTypeInfo(session, i, type_info.put()),
          "SessionGetInputTypeInfo");
    ONNXType onnx_type = ONNX_TYPE_UNKNOWN;
    Check(api.GetOnnxTypeFromTypeInfo(type_info.get(), &onnx_type), "GetOnnxTypeFromTypeInfo");
    if (onnx_type == ONNX_TYPE_TENSOR) {
      const OrtTensorTypeAndShapeInfo* tensor = nullptr;
      Check(api.CastTypeInfoToTensorInfo(type_info.get(), &tensor), "CastTypeInfoToTensorInfo");
      ONNXTensorElementDataType elem = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
      Check(api.GetTensorElementType(tensor, &elem), "GetTensorElementType");
      info.type = static_cast<int>(elem);
      size_t rank = 0;
      Check(api.GetDimensionsCount(tensor, &rank), "GetDimensionsCount");
      info.dims.resize(rank);
      std::vector<const char*> symbols(rank, nullptr);
      Check(api.GetDimensions(tensor, info.dims.data(), rank), "GetDimensions");
      Check(api.GetSymbolicDimensions(tensor, symbols.data(), rank), "GetSymbolicDimensions");
      for (const char* s : symbols) info.symbols.emplace_back(s ? s : "");
    }
    out.push_back(std::move(info));
  }
}

// Adds the CUDA EP with the session's provider options. Cores built with CUDA options support take
// them through SessionOptionsAppendExecutionProvider_CUDA_V2; a core without (CreateCUDAProviderOptions
// fails) gets the provider as an execution provider library, with the same options as EP options.
// Returns which way was taken ("cuda-v2" or "ep-library").
std::string AppendCuda(OrtSessionOptions* options, const Runtime& rt, const SessionConfig& c) {
  const OrtApi& api = Api();
  std::vector<const char*> keys, values;
  for (const auto& [key, value] : c.cuda_options) {
    keys.push_back(key.c_str());
    values.push_back(value.c_str());
  }
  OwnedCudaOptions cuda;
  if (OrtStatus* status = api.CreateCUDAProviderOptions(cuda.put())) {
    api.ReleaseStatus(status);
    const OrtEpDevice* device = CudaEpDevice(rt, c.device_id);
    try {
      Check(api.SessionOptionsAppendExecutionProvider_V2(options, rt.env, &device, 1, keys.data(), values.data(),
                                                          keys.size()),
            "SessionOptionsAppendExecutionProvider_V2");
    } catch (const NativeError& e) {
      throw NativeError(ErrorKind::Unsupported, std::string("the CUDA execution provider cannot start: ") + e.what(),
                        e.ort_code);
    }
    return "ep-library";
  }
  Check(api.UpdateCUDAProviderOptions(cuda.get(), keys.data(), values.data(), keys.size()), "UpdateCUDAProviderOptions");
  try {
    Check(api.SessionOptionsAppendExecutionProvider_CUDA_V2(options, cuda.get()),
          "SessionOptionsAppendExecutionProvider_CUDA_V2");
  } catch (const NativeError& e) {
    throw NativeError(ErrorKind::Unsupported, std::string("the CUDA execution provider cannot start: ") + e.what(),
                      e.ort_code);
  }
  return "cuda-v2";
}

// The session's allocator for CUDA device memory: the one named "Cuda", else the one for the first
// input ORT places on a GPU (the names an EP library gives its memory may differ).
OwnedAllocator DeviceAllocator(OrtSession* session, int device_id, size_t num_inputs) {
  const OrtApi& api = Api();
  OwnedAllocator allocator;
  OwnedMemoryInfo info;
  Check(api.CreateMemoryInfo("Cuda", OrtArenaAllocator, device_id, OrtMemTypeDefault, info.put()),
        "CreateMemoryInfo(Cuda)");
  OrtStatus* first = api.CreateAllocator(session, info.get(), allocator.put());
  if (!first) return allocator;
  const std::string why = api.GetErrorMessage(first);
  api.ReleaseStatus(first);
  std::vector<const OrtMemoryInfo*> infos(num_inputs, nullptr);
  if (num_inputs > 0) Check(api.SessionGetMemoryInfoForInputs(session, infos.data(), num_inputs), "SessionGetMemoryInfoForInputs");
  for (const OrtMemoryInfo* input : infos) {
    OrtMemoryInfoDeviceType type = OrtMemoryInfoDeviceType_CPU;
    if (input) api.MemoryInfoGetDeviceType(input, &type);
    if (type == OrtMemoryInfoDeviceType_GPU) {
      Check(api.CreateAllocator(session, input, allocator.put()), "CreateAllocator(input device)");
      return allocator;
    }
  }
  throw NativeError(ErrorKind::Runtime, "CreateAllocator(Cuda): " + why + "; and no input is placed on a GPU");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// JS thread

Napi::Function Session::Define(Napi::Env env) {
  return DefineClass(env, "NativeSessionHandle",
                     {
                         InstanceMethod<&Session::Open>("open"),
                         InstanceMethod<&Session::Bind>("bind"),
                         InstanceMethod<&Session::Run>("run"),
                         InstanceMethod<&Session::ReleaseBinding>("releaseBinding"),
                         InstanceMethod<&Session::EndProfiling>("endProfiling"),
                         InstanceMethod<&Session::Close>("close"),
                         InstanceMethod<&Session::Pending>("pending"),
                     });
}

Session::Session(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Session>(info), env_(info.Env()) {
  const Napi::Env env = info.Env();
  if (!LoadedRuntime()) {
    throw Napi::Error::New(env, "load the ONNX Runtime library (loadRuntime) before creating a session");
  }
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject()) {
    throw Napi::TypeError::New(env, "new NativeSessionHandle(modelPath: string, options: object)");
  }
  const auto opts = info[1].As<Napi::Object>();
  SessionConfig& c = core_.config;
  try {
    c.model_path = info[0].As<Napi::String>().Utf8Value();
    c.cuda = opts.Get("device").ToString().Utf8Value() == "cuda";
    c.device_id = IntField(opts, "deviceId", 0);
    c.threads = IntField(opts, "threads", 0);
    c.optimization = IntField(opts, "optimization", ORT_ENABLE_ALL);
    c.log_level = IntField(opts, "logLevel", -1);
    if (opts.Get("profilePrefix").IsString()) c.profile_prefix = opts.Get("profilePrefix").ToString().Utf8Value();
    c.session_entries = StringEntries(opts.Get("sessionConfig"), "sessionConfig");
    c.cuda_options = StringEntries(opts.Get("cudaOptions"), "cudaOptions");
  } catch (const NativeError& e) {
    throw Napi::Error(env, MakeError(env, e.kind, e.what(), 0));
  }

  completion_ = Completion::New(env, "vitgraph-native-session", 0, 1, this);
  completion_.Unref(env);  // only pending work keeps the process alive
  napi_add_env_cleanup_hook(env, &Session::OnEnvCleanup, this);
  cleanup_hook_ = true;
  worker_ = std::thread(&Session::WorkerMain, this);
}

Session::~Session() {
  ShutdownSync();
  if (cleanup_hook_) napi_remove_env_cleanup_hook(env_, &Session::OnEnvCleanup, this);
}

void Session::OnEnvCleanup(void* self) {
  auto* session = static_cast<Session*>(self);
  session->cleanup_hook_ = false;
  session->ShutdownSync();
}

// Stops the worker without JavaScript (garbage collection of an unclosed session, or Node exiting):
// queued jobs are dropped, the running one finishes, then the worker frees everything and exits.
void Session::ShutdownSync() {
  if (state_ == State::Stopped) return;
  std::deque<std::unique_ptr<Job>> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    dropped.swap(queue_);
    queue_.push_back(std::make_unique<Job>(Job::Kind::Close));
  }
  wake_.notify_one();
  if (worker_.joinable()) worker_.join();
  for (auto& job : dropped) job->Abandon();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.clear();
  }
  state_ = State::Stopped;
  completion_.Release();
}

Napi::Value Session::Submit(Napi::Env env, std::unique_ptr<Job> job) {
  job->deferred.emplace(Napi::Promise::Deferred::New(env));
  const auto promise = job->deferred->Promise();
  if (state_ != State::Open) {
    job->deferred->Reject(MakeError(env, ErrorKind::Closed, "native session is closed", 0));
    return promise;
  }
  if (pending_++ == 0) {
    completion_.Ref(env);
    Ref();  // keep this object alive while the worker holds a job for it
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
  return promise;
}

void Session::Settle(Napi::Env env) {
  if (--pending_ != 0) return;
  if (state_ != State::Stopped) completion_.Unref(env);
  Unref();
}

void CompleteJob(Napi::Env env, Napi::Function, Session* self, Job* job) {
  std::unique_ptr<Job> owned(job);
  if (static_cast<napi_env>(env) == nullptr) {  // Node is tearing the function down
    owned->Abandon();
    return;
  }
  self->Complete(env, owned.get());
}

void Session::Complete(Napi::Env env, Job* job) {
  Napi::HandleScope scope(env);
  if (job->kind == Job::Kind::Close) {
    if (worker_.joinable()) worker_.join();
    state_ = State::Stopped;
    if (cleanup_hook_) {
      napi_remove_env_cleanup_hook(env, &Session::OnEnvCleanup, this);
      cleanup_hook_ = false;
    }
    completion_.Release();
  }
  auto& deferred = *job->deferred;
  try {
    if (job->failed) {
      deferred.Reject(MakeError(env, job->error_kind, job->message, job->ort_code));
    } else {
      switch (job->kind) {
        case Job::Kind::Open: {
          auto meta = Napi::Object::New(env);
          meta.Set("inputs", InfoArray(env, job->inputs));
          meta.Set("outputs", InfoArray(env, job->outputs));
          meta.Set("staging", job->text);
          if (!job->cuda_api.empty()) meta.Set("cudaApi", job->cuda_api);
          deferred.Resolve(meta);
          break;
        }
        case Job::Kind::Bind: {
          auto result = Napi::Object::New(env);
          result.Set("id", job->binding);
          result.Set("staging", job->text);
          deferred.Resolve(result);
          break;
        }
        case Job::Kind::EndProfiling:
          deferred.Resolve(Napi::String::New(env, job->text));
          break;
        default:
          deferred.Resolve(env.Undefined());
      }
    }
  } catch (const Napi::Error& e) {
    deferred.Reject(e.Value());
  }
  job->keep.clear();
  Settle(env);
}

Napi::Value Session::Open(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<Job>(Job::Kind::Open));
}

// bind(inputs: {name, type, shape}[], outputs: {name, type, shape}[], graphId?: number) → Promise<{id, staging}>
Napi::Value Session::Bind(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  auto job = std::make_unique<Job>(Job::Kind::Bind);
  try {
    job->input_specs = PortSpecs(info[0], "input");
    job->output_specs = PortSpecs(info[1], "output");
  } catch (const NativeError& e) {
    throw Napi::Error(env, MakeError(env, e.kind, e.what(), 0));
  }
  if (info.Length() > 2 && info[2].IsNumber()) job->graph_id = info[2].As<Napi::Number>().Int64Value();
  job->binding = next_binding_++;
  return Submit(env, std::move(job));
}

// run(bindingId, inputs: TypedArray[], outputs: TypedArray[]) → Promise<void>
// The worker copies out of `inputs` and into `outputs` directly; neither may be touched until the
// promise settles (native.ts hands out fresh output arrays and documents this for inputs).
Napi::Value Session::Run(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  auto job = std::make_unique<Job>(Job::Kind::Run);
  job->binding = info[0].As<Napi::Number>().Uint32Value();
  try {
    if (!info[1].IsArray() || !info[2].IsArray()) ThrowArgument("run(bindingId, inputs[], outputs[])");
    const auto inputs = info[1].As<Napi::Array>();
    const auto outputs = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < inputs.Length(); ++i) {
      const auto bytes = TypedArrayBytes(inputs.Get(i), "input", i);
      job->sources.emplace_back(bytes.first, bytes.second);
      job->keep.push_back(Napi::Persistent(inputs.Get(i).As<Napi::Object>()));
    }
    for (uint32_t i = 0; i < outputs.Length(); ++i) {
      const auto bytes = TypedArrayBytes(outputs.Get(i), "output", i);
      job->targets.emplace_back(bytes.first, bytes.second);
      job->keep.push_back(Napi::Persistent(outputs.Get(i).As<Napi::Object>()));
    }
  } catch (const NativeError& e) {
    throw Napi::Error(env, MakeError(env, e.kind, e.what(), 0));
  }
  return Submit(env, std::move(job));
}

Napi::Value Session::ReleaseBinding(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<Job>(Job::Kind::ReleaseBinding);
  job->binding = info[0].As<Napi::Number>().Uint32Value();
  return Submit(info.Env(), std::move(job));
}

Napi::Value Session::EndProfiling(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<Job>(Job::Kind::EndProfiling));
}

// close() → Promise<void>. Jobs not yet started are rejected now; the running one finishes; then the
// worker frees bindings, device memory and the session, and exits. A second close() resolves at once.
Napi::Value Session::Close(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (state_ != State::Open) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Resolve(env.Undefined());
    return deferred.Promise();
  }
  std::deque<std::unique_ptr<Job>> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    dropped.swap(queue_);
  }
  for (auto& job : dropped) {
    job->deferred->Reject(MakeError(env, ErrorKind::Closed, "native session was closed before this request ran", 0));
    job->keep.clear();
    Settle(env);
  }
  auto job = Submit(env, std::make_unique<Job>(Job::Kind::Close));
  state_ = State::Closing;
  return job;
}

Napi::Value Session::Pending(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(pending_));
}

// ---------------------------------------------------------------------------------------------
// worker thread

void Session::WorkerMain() {
  for (;;) {
    std::unique_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return !queue_.empty(); });
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    const bool last = job->kind == Job::Kind::Close;
    Execute(*job);
    if (job->deferred) {
      Job* raw = job.release();
      if (completion_.NonBlockingCall(raw) != napi_ok) {  // Node is going away
        raw->Abandon();
        delete raw;
      }
    }
    if (last) return;
  }
}

void Session::Execute(Job& job) {
  if (!core_.config.cuda) return ExecuteLocked(job);
  const auto it = job.kind == Job::Kind::Run ? core_.bindings.find(job.binding) : core_.bindings.end();
  if (it != core_.bindings.end() && it->second->graph && it->second->runs < kCaptureRuns) {
    std::unique_lock<std::shared_mutex> lock(g_cuda_capture);
    ExecuteLocked(job);
  } else {
    std::shared_lock<std::shared_mutex> lock(g_cuda_capture);
    ExecuteLocked(job);
  }
}

void Session::ExecuteLocked(Job& job) {
  try {
    switch (job.kind) {
      case Job::Kind::Open:
        DoOpen(job);
        break;
      case Job::Kind::Bind:
        DoBind(job);
        break;
      case Job::Kind::Run:
        DoRun(job);
        break;
      case Job::Kind::ReleaseBinding:
        core_.bindings.erase(job.binding);
        break;
      case Job::Kind::EndProfiling: {
        if (!core_.session) throw NativeError(ErrorKind::Closed, "native session is not open");
        char* path = nullptr;
        Check(Api().SessionEndProfiling(core_.session.get(), core_.cpu_allocator, &path), "SessionEndProfiling");
        job.text = path ? path : "";
        if (path) Check(Api().AllocatorFree(core_.cpu_allocator, path), "AllocatorFree");
        break;
      }
      case Job::Kind::Close:
        DoClose();
        break;
    }
  } catch (const NativeError& e) {
    job.failed = true;
    job.error_kind = e.kind;
    job.message = e.what();
    job.ort_code = e.ort_code;
  } catch (const std::exception& e) {
    job.failed = true;
    job.message = e.what();
  }
}

void Session::DoOpen(Job& job) {
  const OrtApi& api = Api();
  const Runtime& rt = *LoadedRuntime();
  const SessionConfig& c = core_.config;
  Check(api.GetAllocatorWithDefaultOptions(&core_.cpu_allocator), "GetAllocatorWithDefaultOptions");

  if (c.cuda) {
    ProbeCuda(rt, c.device_id);
    core_.cudart = &LoadCudaRuntime();
    core_.cudart->Check(core_.cudart->SetDevice(c.device_id), "cudaSetDevice");
  }

  OwnedSessionOptions options;
  Check(api.CreateSessionOptions(options.put()), "CreateSessionOptions");
  if (c.threads > 0) Check(api.SetIntraOpNumThreads(options.get(), c.threads), "SetIntraOpNumThreads");
  Check(api.SetSessionGraphOptimizationLevel(options.get(), static_cast<GraphOptimizationLevel>(c.optimization)),
        "SetSessionGraphOptimizationLevel");
  if (c.log_level >= 0) Check(api.SetSessionLogSeverityLevel(options.get(), c.log_level), "SetSessionLogSeverityLevel");
  if (!c.profile_prefix.empty()) Check(api.EnableProfiling(options.get(), c.profile_prefix.c_str()), "EnableProfiling");
  for (const auto& [key, value] : c.session_entries) {
    Check(api.AddSessionConfigEntry(options.get(), key.c_str(), value.c_str()), "AddSessionConfigEntry");
  }
  if (c.cuda) job.cuda_api = AppendCuda(options.get(), rt, c);

  Check(api.CreateSession(rt.env, c.model_path.c_str(), options.get(), core_.session.put()), "CreateSession");
  CollectInfos(core_.session.get(), core_.cpu_allocator, true, job.inputs);
  CollectInfos(core_.session.get(), core_.cpu_allocator, false, job.outputs);

  if (c.cuda) {
    core_.device_allocator = DeviceAllocator(core_.session.get(), c.device_id, job.inputs.size());
    // Without a pinned allocator, copies go straight from/to the caller's pageable memory.
    OwnedMemoryInfo pinned_info;
    Check(api.CreateMemoryInfo("CudaPinned", OrtDeviceAllocator, c.device_id, OrtMemTypeCPUOutput, pinned_info.put()),
          "CreateMemoryInfo(CudaPinned)");
    OrtStatus* status = api.CreateAllocator(core_.session.get(), pinned_info.get(), core_.pinned_allocator.put());
    if (status) api.ReleaseStatus(status);
    job.text = core_.pinned_allocator ? "pinned" : "pageable";
  } else {
    job.text = "host";
  }
}

Port Session::MakePort(const PortSpec& spec, bool on_device) {
  const OrtApi& api = Api();
  Port port;
  port.spec = spec;
  OrtAllocator* allocator = on_device ? core_.device_allocator.get() : core_.cpu_allocator;
  Check(api.CreateTensorAsOrtValue(allocator, spec.shape.data(), spec.shape.size(), spec.type, port.value.put()),
        "CreateTensorAsOrtValue");
  Check(api.GetTensorMutableData(port.value.get(), &port.data), "GetTensorMutableData");
  return port;
}

void Session::DoBind(Job& job) {
  if (!core_.session) throw NativeError(ErrorKind::Closed, "native session is not open");
  const OrtApi& api = Api();
  const bool cuda = core_.config.cuda;
  auto binding = std::make_unique<BindingState>();
  Check(api.CreateIoBinding(core_.session.get(), binding->io.put()), "CreateIoBinding");
  Check(api.CreateRunOptions(binding->run_options.put()), "CreateRunOptions");
  if (job.graph_id) {
    binding->graph = *job.graph_id > 0;
    const std::string id = std::to_string(*job.graph_id);
    Check(api.AddRunConfigEntry(binding->run_options.get(), kOrtRunOptionsConfigCudaGraphAnnotation, id.c_str()),
          "AddRunConfigEntry(gpu_graph_id)");
  }
  size_t largest = 0;
  for (const auto& spec : job.input_specs) {
    binding->inputs.push_back(MakePort(spec, cuda));
    Check(api.BindInput(binding->io.get(), spec.name.c_str(), binding->inputs.back().value.get()),
          ("BindInput(" + spec.name + ")").c_str());
    largest = std::max(largest, spec.bytes);
  }
  for (const auto& spec : job.output_specs) {
    binding->outputs.push_back(MakePort(spec, cuda));
    Check(api.BindOutput(binding->io.get(), spec.name.c_str(), binding->outputs.back().value.get()),
          ("BindOutput(" + spec.name + ")").c_str());
    largest = std::max(largest, spec.bytes);
  }
  if (cuda && core_.pinned_allocator && largest > core_.staging_bytes) {
    if (core_.staging) Check(api.AllocatorFree(core_.pinned_allocator.get(), core_.staging), "AllocatorFree(staging)");
    core_.staging = nullptr;
    core_.staging_bytes = 0;
    Check(api.AllocatorAlloc(core_.pinned_allocator.get(), largest, &core_.staging), "AllocatorAlloc(CudaPinned)");
    core_.staging_bytes = largest;
  }
  job.text = cuda ? (core_.pinned_allocator ? "pinned" : "pageable") : "host";
  core_.bindings[job.binding] = std::move(binding);
}

void Session::CopyIn(const Port& port, const void* src, size_t bytes) {
  if (!core_.config.cuda) {
    std::memcpy(port.data, src, bytes);
  } else if (core_.staging) {
    std::memcpy(core_.staging, src, bytes);
    core_.cudart->Check(core_.cudart->Memcpy(port.data, core_.staging, bytes, CudaRuntime::kHostToDevice),
                        "cudaMemcpy(host to device)");
  } else {
    core_.cudart->Check(core_.cudart->Memcpy(port.data, src, bytes, CudaRuntime::kHostToDevice),
                        "cudaMemcpy(host to device)");
  }
}

void Session::CopyOut(const Port& port, void* dst, size_t bytes) {
  if (!core_.config.cuda) {
    std::memcpy(dst, port.data, bytes);
  } else if (core_.staging) {
    core_.cudart->Check(core_.cudart->Memcpy(core_.staging, port.data, bytes, CudaRuntime::kDeviceToHost),
                        "cudaMemcpy(device to host)");
    std::memcpy(dst, core_.staging, bytes);
  } else {
    core_.cudart->Check(core_.cudart->Memcpy(dst, port.data, bytes, CudaRuntime::kDeviceToHost),
                        "cudaMemcpy(device to host)");
  }
}

void Session::DoRun(Job& job) {
  if (!core_.session) throw NativeError(ErrorKind::Closed, "native session is not open");
  const auto it = core_.bindings.find(job.binding);
  if (it == core_.bindings.end()) throw NativeError(ErrorKind::Closed, "native binding was released");
  BindingState& b = *it->second;
  if (job.sources.size() != b.inputs.size() || job.targets.size() != b.outputs.size()) {
    ThrowArgument("run: expected " + std::to_string(b.inputs.size()) + " inputs and " +
                  std::to_string(b.outputs.size()) + " outputs, got " + std::to_string(job.sources.size()) + " and " +
                  std::to_string(job.targets.size()));
  }
  for (size_t i = 0; i < b.inputs.size(); ++i) {
    const auto& port = b.inputs[i];
    if (job.sources[i].second != port.spec.bytes) {
      ThrowArgument("input \"" + port.spec.name + "\": expected " + std::to_string(port.spec.bytes) + " bytes, got " +
                    std::to_string(job.sources[i].second));
    }
  }
  for (size_t i = 0; i < b.outputs.size(); ++i) {
    const auto& port = b.outputs[i];
    if (job.targets[i].second != port.spec.bytes) {
      ThrowArgument("output \"" + port.spec.name + "\": expected " + std::to_string(port.spec.bytes) +
                    " bytes, got " + std::to_string(job.targets[i].second));
    }
  }
  for (size_t i = 0; i < b.inputs.size(); ++i) CopyIn(b.inputs[i], job.sources[i].first, job.sources[i].second);
  if (core_.config.cuda) {
    // A copy from pageable memory may return before its DMA lands; ORT computes on its own
    // (non-blocking) stream, so wait for the legacy stream the copies went to.
    core_.cudart->Check(core_.cudart->StreamSynchronize(nullptr), "cudaStreamSynchronize");
  }
  const OrtApi& api = Api();
  ++b.runs;
  Check(api.RunWithBinding(core_.session.get(), b.run_options.get(), b.io.get()), "Run");
  if (core_.config.cuda) Check(api.SynchronizeBoundOutputs(b.io.get()), "SynchronizeBoundOutputs");
  for (size_t i = 0; i < b.outputs.size(); ++i) CopyOut(b.outputs[i], job.targets[i].first, job.targets[i].second);
}

void Session::DoClose() {
  core_.bindings.clear();
  if (core_.staging) {
    OrtStatus* status = Api().AllocatorFree(core_.pinned_allocator.get(), core_.staging);
    if (status) Api().ReleaseStatus(status);
    core_.staging = nullptr;
    core_.staging_bytes = 0;
  }
  core_.pinned_allocator.reset();
  core_.device_allocator.reset();
  core_.session.reset();
}

}  // namespace vitgraph
