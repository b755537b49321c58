#!/usr/bin/env bash
# Installs every Debian 12 package the build, the tests and the benchmarks need.
# Idempotent; run as root (or with sudo available).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(
  build-essential cmake pkg-config ninja-build
  libboost-dev libboost-system-dev
  libabsl-dev libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
  libsqlite3-dev libarchive-dev libcurl4-openssl-dev
  libgtest-dev libgmock-dev
  clang libclang-rt-14-dev  # scripts/fuzz.sh: libFuzzer targets (clang's ASan/UBSan runtimes)
  python3 python3-pytest python3-requests
  python3-numpy python3-sklearn python3-pil
  python3-setuptools  # builds the Python client (python/cortex) for pip
  python3-starlette  # the runtime's Request/Response types, as in Cortex's images (optional)
  curl procps
  prometheus  # tests/e2e/test_prometheus.py scrapes the cluster with it
  chromium fonts-dejavu-core  # tests/e2e/test_dashboard.py: the dashboard in headless Chromium
  python3-botocore python3-boto3  # tests/s3: the reference SigV4 signer, and the S3 test client
  python3-kubernetes python3-yaml  # tests/kubernetes: the API's typed models (unknown fields)
  # The ONNX predictor: the _cortex_onnx extension (pybind11 over ONNX Runtime's C++ API), and
  # the test models (onnx.helper graphs, torch.onnx.export); venv + pip for dependency files.
  pybind11-dev python3-dev python3-torch python3-onnx python3-torchvision python3-venv python3-pip
)
# Benchmark peers (the Cortex v0.24 serving stack rebuilt from Debian packages) and plotting
# (bench/autoscale_bench.py draws its timeline with matplotlib).
if [ "${CORTEX_INSTALL_BENCH:-0}" = "1" ]; then
  PACKAGES+=(wrk nginx-light python3-fastapi python3-uvicorn python3-uvloop python3-httptools
             python3-matplotlib linux-perf)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# node and npm install ONNX Runtime and s3rver from the npm registry: the machine's own (node 20
# with its npm) when it has them, otherwise Debian's packages.
if ! command -v npm >/dev/null 2>&1; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends nodejs npm
fi

# The S3 test peer for tests/s3/test_s3_functional.py: s3rver from npm, into the (git-ignored)
# build tree. It needs node and npm (node 20 with its own npm; Debian's npm package is not
# wanted); without them the functional S3 tests skip.
S3RVER_VERSION=3.7.1
S3RVER_DIR="${CORTEX_S3RVER_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build/_deps/s3rver}"
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  if ! grep -qs "\"version\": \"${S3RVER_VERSION}\"" "$S3RVER_DIR/node_modules/s3rver/package.json"; then
    mkdir -p "$S3RVER_DIR"
    npm install --prefix "$S3RVER_DIR" "s3rver@${S3RVER_VERSION}" --no-audit --no-fund \
      --loglevel=error
  fi
else
  echo "install-deps: node/npm not found; skipping s3rver (tests/s3 functional tests skip)" >&2
fi

# The official Kubernetes schemas, compiled to validators by the npm package kubernetes-models
# (docs/kubernetes.md: the pinned version and what it checks), and js-yaml to read the streams:
# tests/kubernetes validates every manifest the CLI renders with them. Not optional.
K8S_MODELS_VERSION=5.1.0
JS_YAML_VERSION=4.3.2
K8S_MODELS_DIR="${CORTEX_K8S_MODELS_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build/_deps/k8s-models}"
if ! grep -qs "\"version\": \"${K8S_MODELS_VERSION}\"" \
    "$K8S_MODELS_DIR/node_modules/kubernetes-models/package.json" || \
   ! grep -qs "\"version\": \"${JS_YAML_VERSION}\"" "$K8S_MODELS_DIR/node_modules/js-yaml/package.json"; then
  mkdir -p "$K8S_MODELS_DIR"
  # kubernetes-models asks for node >= 22 (EBADENGINE) but works on node 20.
  npm install --prefix "$K8S_MODELS_DIR" "kubernetes-models@${K8S_MODELS_VERSION}" \
    "js-yaml@${JS_YAML_VERSION}" --no-audit --no-fund --loglevel=error
fi

# The dashboard (docs/dashboard.md): its chart library (Chart.js) and the bundler that builds its
# script at build time (esbuild, whose npm package carries its Linux binary), and playwright-core,
# which drives Debian's chromium in tests/e2e/test_dashboard.py (it never downloads a browser).
# Into the (git-ignored) build tree, where CMake looks for them. Not optional: the build needs it.
CHARTJS_VERSION=4.6.1
ESBUILD_VERSION=0.28.2
PLAYWRIGHT_VERSION=1.65.1
DASHBOARD_DIR="${CORTEX_DASHBOARD_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build/_deps/dashboard}"
if ! grep -qs "\"version\": \"${CHARTJS_VERSION}\"" "$DASHBOARD_DIR/node_modules/chart.js/package.json" || \
   ! grep -qs "\"version\": \"${ESBUILD_VERSION}\"" "$DASHBOARD_DIR/node_modules/esbuild/package.json" || \
   ! grep -qs "\"version\": \"${PLAYWRIGHT_VERSION}\"" "$DASHBOARD_DIR/node_modules/playwright-core/package.json"; then
  mkdir -p "$DASHBOARD_DIR"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$DASHBOARD_DIR" \
    "chart.js@${CHARTJS_VERSION}" "esbuild@${ESBUILD_VERSION}" \
    "playwright-core@${PLAYWRIGHT_VERSION}" --no-audit --no-fund --loglevel=error
fi

# ONNX Runtime (no Debian package has it) from npm, into the (git-ignored) build tree:
# build/_deps/onnxruntime/{include,lib/libonnxruntime.so}, where CMake looks for it.
# One download: com.github.asus4.onnxruntime (MIT, a Unity plugin repackaging Microsoft's release
# builds) is the only npm package that ships ORT's C and C++ API headers, and it also carries the
# Linux x64 library built from the same release (1.29.0, ORT_API_VERSION 29), so header and
# library match exactly. onnxruntime-node (1.30.0) would add a second 90 MB download for a
# library only; the extension loads whatever CORTEX_ONNXRUNTIME_LIB names if a newer one is
# wanted. `npm pack` fetches and verifies the tarball with npm's own client without installing
# it (no lifecycle scripts run: --ignore-scripts), and only the headers and the Linux library are
# unpacked (30 MB of the 400 MB the package holds).
# Unlike s3rver this is not optional: the Python runtime tests need it.
ORT_NPM_PACKAGE=com.github.asus4.onnxruntime
ORT_NPM_VERSION=0.4.9
ORT_VERSION=1.29.0
ORT_DIR="${CORTEX_ONNXRUNTIME_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build/_deps/onnxruntime}"
ORT_STAMP="${ORT_NPM_PACKAGE}@${ORT_NPM_VERSION} onnxruntime ${ORT_VERSION}"
if [ "$(cat "$ORT_DIR/VERSION" 2>/dev/null)" != "$ORT_STAMP" ] || \
   [ ! -f "$ORT_DIR/lib/libonnxruntime.so" ] || [ ! -f "$ORT_DIR/include/onnxruntime_cxx_api.h" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-deps: npm not found; it is needed to install ONNX Runtime (install node 20 with npm, then rerun)" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$ORT_DIR")"
  ort_tmp="$(mktemp -d "$(dirname "$ORT_DIR")/onnxruntime.tmp.XXXXXX")"
  trap 'rm -rf "$ort_tmp"' EXIT
  (cd "$ort_tmp" && npm pack "${ORT_NPM_PACKAGE}@${ORT_NPM_VERSION}" --ignore-scripts \
     --no-audit --no-fund --loglevel=error >/dev/null)
  ort_headers="package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers"
  ort_lib="package/Plugins/Linux/x64/libonnxruntime.so"
  tar --no-same-owner -xzf "$ort_tmp/${ORT_NPM_PACKAGE}-${ORT_NPM_VERSION}.tgz" -C "$ort_tmp" "$ort_headers" "$ort_lib"
  mkdir -p "$ort_tmp/out/include" "$ort_tmp/out/lib"
  mv "$ort_tmp/$ort_headers"/*.h "$ort_tmp/out/include/"
  mv "$ort_tmp/$ort_lib" "$ort_tmp/out/lib/libonnxruntime.so"
  echo "$ORT_STAMP" > "$ort_tmp/out/VERSION"
  rm -rf "$ORT_DIR"
  mv "$ort_tmp/out" "$ORT_DIR"
  rm -rf "$ort_tmp"
  trap - EXIT
  echo "install-deps: ONNX Runtime ${ORT_VERSION} installed in $ORT_DIR" >&2
fi

# The Python client (`import cortex`, docs/python-client.md) for Debian's /usr/bin/python3, from
# python/ (nothing is downloaded: its one dependency, PyYAML, is python3-yaml above). Debian marks
# its Python as externally managed; the client goes to /usr/local, which pip owns there.
CLIENT_DIR="$(cd "$(dirname "$0")/.." && pwd)/python"
$SUDO /usr/bin/python3 -m pip install --quiet --no-index --no-build-isolation --no-deps \
  --break-system-packages --root-user-action=ignore --force-reinstall "$CLIENT_DIR"
$SUDO rm -rf "$CLIENT_DIR/build" "$CLIENT_DIR/cortex.egg-info"  # setuptools' in-tree leftovers
