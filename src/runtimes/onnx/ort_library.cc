#include "runtimes/onnx/ort_library.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#define ORT_API_MANUAL_INIT
#include <onnxruntime_cxx_api.h>
#undef ORT_API_MANUAL_INIT

namespace cortex::onnx {
namespace {

const OrtApiBase* g_base = nullptr;

std::string ModuleDir() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<const void*>(&ModuleDir), &info) == 0 || !info.dli_fname) return {};
  return std::filesystem::path(info.dli_fname).parent_path().string();
}

std::string Load() {
  const std::string path = LibraryPath();
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    return "ONNX Runtime is not installed: cannot load " + path + " (" +
           (why ? why : "unknown error") + ") (run scripts/install-deps.sh)";
  }
  using GetApiBaseFn = const OrtApiBase* (*)();
  auto get_base = reinterpret_cast<GetApiBaseFn>(::dlsym(handle, "OrtGetApiBase"));
  if (get_base == nullptr) {
    return "ONNX Runtime is not installed: " + path +
           " does not export OrtGetApiBase (run scripts/install-deps.sh)";
  }
  const OrtApiBase* base = get_base();
  const OrtApi* api = base ? base->GetApi(ORT_API_VERSION) : nullptr;
  if (api == nullptr) {
    // GetApi prints its own complaint to stderr; this message is the one the caller sees.
    return "ONNX Runtime " + std::string(base ? base->GetVersionString() : "?") + " at " + path +
           " does not provide API version " + std::to_string(ORT_API_VERSION) +
           " (this build needs ONNX Runtime 1." + std::to_string(ORT_API_VERSION) +
           " or newer; run scripts/install-deps.sh or set CORTEX_ONNXRUNTIME_LIB)";
  }
  Ort::InitApi(api);
  g_base = base;
  // The handle stays open for the life of the process: sessions hold code from it.
  return {};
}

}  // namespace

std::string LibraryPath() {
  if (const char* env = std::getenv("CORTEX_ONNXRUNTIME_LIB"); env != nullptr && *env != '\0') {
    return env;
  }
  if (std::string dir = ModuleDir(); !dir.empty()) {
    std::filesystem::path beside = std::filesystem::path(dir) / "libonnxruntime.so";
    std::error_code ec;
    if (std::filesystem::exists(beside, ec)) return beside.string();
  }
  return CORTEX_ONNXRUNTIME_LIB_PATH;
}

const std::string& EnsureLoaded() {
  static std::once_flag once;
  static std::string error;
  std::call_once(once, [] { error = Load(); });
  return error;
}

std::string LoadedVersion() { return g_base ? g_base->GetVersionString() : ""; }

}  // namespace cortex::onnx
