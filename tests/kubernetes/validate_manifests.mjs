// Validates YAML streams of Kubernetes objects against the official OpenAPI schemas, as compiled
// by the npm package kubernetes-models (installed by scripts/install-deps.sh into
// build/_deps/k8s-models; CORTEX_K8S_MODELS_DIR names another place).
//
//   node validate_manifests.mjs FILE...   ("-" reads stdin)
//
// Prints one line per object ("ok Deployment cortex/api-iris") or its errors, and exits 1 when
// any object is invalid or of a kind it does not know.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modelsDir =
  process.env.CORTEX_K8S_MODELS_DIR ?? join(here, "..", "..", "build", "_deps", "k8s-models");
const require = createRequire(join(modelsDir, "package.json"));
const yaml = require("js-yaml");

// "apps/v1" + "Deployment" -> kubernetes-models/apps/v1/Deployment; "v1" is the core group.
async function modelFor(apiVersion, kind) {
  // The package is ESM only: its files are imported by path.
  const path = join(modelsDir, "node_modules", "kubernetes-models", apiVersion, `${kind}.js`);
  let module;
  try {
    module = await import(pathToFileURL(path).href);
  } catch {
    return null;
  }
  return module[kind] ?? null;
}

let failed = 0;
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file === "-" ? 0 : file, "utf8");
  for (const doc of yaml.loadAll(text)) {
    if (doc === null || doc === undefined) continue;
    const name = `${doc.kind} ${doc.metadata?.namespace ?? ""}/${doc.metadata?.name ?? "?"}`;
    const Model = await modelFor(doc.apiVersion, doc.kind);
    if (Model === null) {
      console.log(`unknown ${doc.apiVersion} ${doc.kind} (${file})`);
      failed++;
      continue;
    }
    try {
      new Model(doc).validate();
      console.log(`ok ${name}`);
    } catch (e) {
      console.log(`invalid ${name} (${file}): ${e.message}`);
      failed++;
    }
  }
}
process.exit(failed === 0 ? 0 : 1);
