// The CUDA runtime (libcudart), reached through the copy the CUDA execution provider loaded.
// Used for host<->device copies into bound buffers and for the device probe; never linked.
#pragma once

#include <cstddef>
#include <string>

#include "ort.h"

namespace vitgraph {

struct CudaRuntime {
  std::string library;  // file name of the libcudart in use
  int (*GetDeviceCount)(int*) = nullptr;
  int (*SetDevice)(int) = nullptr;
  int (*Memcpy)(void*, const void*, size_t, int) = nullptr;
  int (*StreamSynchronize)(void*) = nullptr;  // cudaStreamSynchronize(cudaStream_t)
  int (*DriverGetVersion)(int*) = nullptr;
  int (*RuntimeGetVersion)(int*) = nullptr;
  const char* (*GetErrorString)(int) = nullptr;

  static constexpr int kHostToDevice = 1;  // cudaMemcpyHostToDevice
  static constexpr int kDeviceToHost = 2;  // cudaMemcpyDeviceToHost

  // Throws NativeError(Runtime) "what: cuda error N (text)" for a non-zero cudaError_t.
  void Check(int err, const char* what) const;
};

// The libcudart already in the process (loaded by the CUDA provider), else libcudart.so.13 / .12.
// Throws NativeError(Unsupported) when none can be opened.
const CudaRuntime& LoadCudaRuntime();

// Checks that the CUDA execution provider can run with the loaded ORT core library, in the order
// things go missing: provider library next to the core library, its dependencies (CUDA 12/13
// libraries) resolvable, a CUDA device visible, device_id in range.
// Throws NativeError(Unsupported) saying what is missing (Argument for a bad device_id).
void ProbeCuda(const Runtime& rt, int device_id);

// The provider library ORT would load for the CUDA EP: libonnxruntime_providers_cuda.so beside the core.
std::string CudaProviderPath(const Runtime& rt);

// For core libraries built without CUDA options support (CreateCUDAProviderOptions fails, e.g. a
// CPU-only core paired with a separately shipped CUDA provider): registers the provider as an
// execution provider library (once per process) and returns the OrtEpDevice of CUDA device
// `device_id` (the device_id-th GPU the provider reports). Throws NativeError(Unsupported).
const OrtEpDevice* CudaEpDevice(const Runtime& rt, int device_id);

}  // namespace vitgraph
