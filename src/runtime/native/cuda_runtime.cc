#include "cuda_runtime.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include <mutex>

namespace vitgraph {
namespace {

std::mutex g_mutex;
CudaRuntime* g_cudart = nullptr;

bool FileExists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

int FindLoadedCudart(struct dl_phdr_info* info, size_t, void* data) {
  const std::string name = info->dlpi_name ? info->dlpi_name : "";
  const auto slash = name.find_last_of('/');
  const std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
  if (base.rfind("libcudart.so", 0) == 0) {
    *static_cast<std::string*>(data) = name;
    return 1;
  }
  return 0;
}

// DT_NEEDED entries of a 64-bit ELF shared object (empty when the file is not one).
std::vector<std::string> NeededLibraries(const std::string& path) {
  std::vector<std::string> out;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  struct stat st {};
  void* map = fstat(fd, &st) == 0 && st.st_size > static_cast<off_t>(sizeof(Elf64_Ehdr))
                  ? mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0)
                  : MAP_FAILED;
  close(fd);
  if (map == MAP_FAILED) return out;
  const auto* base = static_cast<const uint8_t*>(map);
  const size_t size = static_cast<size_t>(st.st_size);
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
  const bool elf64 = std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_ident[EI_CLASS] == ELFCLASS64 &&
                     eh->e_phoff + static_cast<size_t>(eh->e_phnum) * sizeof(Elf64_Phdr) <= size;
  if (elf64) {
    const auto* ph = reinterpret_cast<const Elf64_Phdr*>(base + eh->e_phoff);
    auto file_offset = [&](uint64_t vaddr) -> uint64_t {
      for (int i = 0; i < eh->e_phnum; ++i) {
        if (ph[i].p_type == PT_LOAD && vaddr >= ph[i].p_vaddr && vaddr < ph[i].p_vaddr + ph[i].p_filesz) {
          return vaddr - ph[i].p_vaddr + ph[i].p_offset;
        }
      }
      return UINT64_MAX;
    };
    for (int i = 0; i < eh->e_phnum; ++i) {
      if (ph[i].p_type != PT_DYNAMIC || ph[i].p_offset + ph[i].p_filesz > size) continue;
      const auto* dyn = reinterpret_cast<const Elf64_Dyn*>(base + ph[i].p_offset);
      const size_t count = ph[i].p_filesz / sizeof(Elf64_Dyn);
      uint64_t strtab = UINT64_MAX;
      std::vector<uint64_t> needed;
      for (size_t d = 0; d < count && dyn[d].d_tag != DT_NULL; ++d) {
        if (dyn[d].d_tag == DT_STRTAB) strtab = file_offset(dyn[d].d_un.d_ptr);
        if (dyn[d].d_tag == DT_NEEDED) needed.push_back(dyn[d].d_un.d_val);
      }
      if (strtab == UINT64_MAX) break;
      for (const uint64_t n : needed) {
        if (strtab + n < size) out.emplace_back(reinterpret_cast<const char*>(base + strtab + n), strnlen(reinterpret_cast<const char*>(base + strtab + n), size - strtab - n));
      }
      break;
    }
  }
  munmap(map, size);
  return out;
}

template <typename Fn>
void Bind(void* handle, const char* symbol, Fn* out, const std::string& library) {
  *out = reinterpret_cast<Fn>(dlsym(handle, symbol));
  if (!*out) throw NativeError(ErrorKind::Unsupported, library + " lacks " + symbol);
}

}  // namespace

void CudaRuntime::Check(int err, const char* what) const {
  if (err == 0) return;
  throw NativeError(ErrorKind::Runtime, std::string(what) + ": CUDA error " + std::to_string(err) + " (" +
                                            (GetErrorString ? GetErrorString(err) : "?") + ")");
}

const CudaRuntime& LoadCudaRuntime() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_cudart) return *g_cudart;
  std::string loaded;
  dl_iterate_phdr(FindLoadedCudart, &loaded);
  void* handle = nullptr;
  std::string library;
  if (!loaded.empty()) {
    handle = dlopen(loaded.c_str(), RTLD_NOW | RTLD_NOLOAD);
    library = loaded;
  }
  std::string errors;
  for (const char* candidate : {"libcudart.so.13", "libcudart.so.12"}) {
    if (handle) break;
    handle = dlopen(candidate, RTLD_NOW | RTLD_LOCAL);
    if (handle) {
      library = candidate;
    } else {
      const char* why = dlerror();
      errors += std::string("; ") + (why ? why : candidate);
    }
  }
  if (!handle) {
    throw NativeError(ErrorKind::Unsupported, "the CUDA runtime library (libcudart.so.13 or .12) cannot be loaded" + errors);
  }
  auto rt = new CudaRuntime();
  rt->library = library;
  Bind(handle, "cudaGetDeviceCount", &rt->GetDeviceCount, library);
  Bind(handle, "cudaSetDevice", &rt->SetDevice, library);
  Bind(handle, "cudaMemcpy", &rt->Memcpy, library);
  Bind(handle, "cudaStreamSynchronize", &rt->StreamSynchronize, library);
  Bind(handle, "cudaDriverGetVersion", &rt->DriverGetVersion, library);
  Bind(handle, "cudaRuntimeGetVersion", &rt->RuntimeGetVersion, library);
  Bind(handle, "cudaGetErrorString", &rt->GetErrorString, library);
  g_cudart = rt;
  return *g_cudart;
}

std::string CudaProviderPath(const Runtime& rt) { return rt.core_dir + "/libonnxruntime_providers_cuda.so"; }

const OrtEpDevice* CudaEpDevice(const Runtime& rt, int device_id) {
  static std::mutex mutex;
  static bool registered = false;
  const OrtApi& api = Api();
  std::lock_guard<std::mutex> lock(mutex);
  if (!registered) {
    const std::string path = CudaProviderPath(rt);
    OrtStatus* status = api.RegisterExecutionProviderLibrary(rt.env, "vitgraph_cuda", path.c_str());
    if (status) {
      const std::string msg = api.GetErrorMessage(status);
      api.ReleaseStatus(status);
      throw NativeError(ErrorKind::Unsupported, "this ONNX Runtime " + rt.version +
                                                    " core has no CUDA options support, and registering " + path +
                                                    " as an execution provider library failed: " + msg);
    }
    registered = true;
  }
  const OrtEpDevice* const* devices = nullptr;
  size_t count = 0;
  Check(api.GetEpDevices(rt.env, &devices, &count), "GetEpDevices");
  int seen = 0;
  for (size_t i = 0; i < count; ++i) {
    const char* name = api.EpDevice_EpName(devices[i]);
    const OrtHardwareDevice* hw = api.EpDevice_Device(devices[i]);
    if (!name || std::strcmp(name, "CUDAExecutionProvider") != 0 || !hw ||
        api.HardwareDevice_Type(hw) != OrtHardwareDeviceType_GPU) {
      continue;
    }
    if (seen++ == device_id) return devices[i];
  }
  throw NativeError(ErrorKind::Unsupported, "the CUDA execution provider library reports " + std::to_string(seen) +
                                                " GPU device(s); deviceId " + std::to_string(device_id) +
                                                " is not among them");
}

void ProbeCuda(const Runtime& rt, int device_id) {
  // A CPU-only core build does not list the CUDA EP yet can load it through the provider bridge
  // (the asus4 packages pair such a core with a separate CUDA provider), so the list only informs.
  const auto providers = AvailableProviders();
  std::string listed;
  for (const auto& p : providers) listed += (listed.empty() ? "" : ", ") + p;
  const std::string shared = rt.core_dir + "/libonnxruntime_providers_shared.so";
  const std::string cuda = CudaProviderPath(rt);
  if (!FileExists(cuda)) {
    throw NativeError(ErrorKind::Unsupported, "the CUDA execution provider library is missing: " + cuda +
                                                  " not found next to the ONNX Runtime " + rt.version +
                                                  " core library (which lists " + listed + ")");
  }
  if (!FileExists(shared)) {
    throw NativeError(ErrorKind::Unsupported, "the provider bridge library is missing: " + shared + " not found");
  }
  // The provider itself must be opened by ORT alone: it takes ORT's host interface from the bridge
  // while its globals initialize, which only works after ORT has set it up. Its dependencies
  // (CUDA runtime, cuBLAS, the driver, ...) can be loaded first, so a missing one is named here;
  // ORT then finds them already in the process.
  for (const auto& name : NeededLibraries(cuda)) {
    if (name == "libonnxruntime_providers_shared.so" || name.find('/') != std::string::npos) continue;
    dlerror();
    if (dlopen(name.c_str(), RTLD_LAZY | RTLD_LOCAL)) continue;
    const char* first = dlerror();
    std::string error = first ? first : "not found";
    const std::string beside = rt.core_dir + "/" + name;  // the provider's own RUNPATH is $ORIGIN
    if (FileExists(beside)) {
      if (dlopen(beside.c_str(), RTLD_LAZY | RTLD_LOCAL)) continue;
      const char* second = dlerror();
      if (second) error = second;
    }
    throw NativeError(ErrorKind::Unsupported, "the CUDA execution provider " + cuda + " needs " + name +
                                                  ", which cannot be loaded (" + error +
                                                  (name == "libcuda.so.1" ? "; is the NVIDIA driver installed?" : "") + ")");
  }
  const CudaRuntime& cudart = LoadCudaRuntime();
  int count = 0;
  const int err = cudart.GetDeviceCount(&count);
  if (err != 0 || count == 0) {
    int driver = 0;
    cudart.DriverGetVersion(&driver);
    throw NativeError(ErrorKind::Unsupported,
                      "no usable CUDA device: cudaGetDeviceCount (" + cudart.library + ") returned " +
                          (err != 0 ? std::string(cudart.GetErrorString(err)) : std::string("0 devices")) +
                          (driver == 0 ? std::string("; no NVIDIA driver found")
                                       : "; the driver supports CUDA " + std::to_string(driver / 1000) + "." +
                                             std::to_string(driver % 1000 / 10)));
  }
  if (device_id < 0 || device_id >= count) {
    throw NativeError(ErrorKind::Argument, "deviceId: expected 0.." + std::to_string(count - 1) + ", got " +
                                               std::to_string(device_id));
  }
}

}  // namespace vitgraph
