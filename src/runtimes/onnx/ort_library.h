// Loads ONNX Runtime at run time (dlopen) and initialises its C++ API.
//
// The binary is never linked against libonnxruntime: ORT versions its one exported symbol
// (OrtGetApiBase@VERS_1.29.0, @VERS_1.30.0, ...), so a link-time dependency would pin one
// release. Loading it by path and asking it for the API version these headers describe lets any
// release that still provides that API version serve.
#pragma once

#include <string>

namespace cortex::onnx {

// The library this process loads: $CORTEX_ONNXRUNTIME_LIB, else a libonnxruntime.so beside the
// extension module (the installed layout), else the path compiled in from the build tree.
std::string LibraryPath();

// Loads the library and initialises the C++ API once per process. Returns an empty string on
// success, else why ONNX Runtime cannot be used (the same message on every later call).
const std::string& EnsureLoaded();

// The loaded library's version string (EnsureLoaded must have succeeded).
std::string LoadedVersion();

}  // namespace cortex::onnx
