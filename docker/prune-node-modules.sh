#!/bin/sh
# Run in the images' deps stage after `npm ci --omit=dev` (which generated the Prisma client): removes
# what the running service never loads, so the image stays small.
set -eu
# The Prisma CLI (with its dev server, Studio, PGlite and effect) only runs `prisma generate`; the
# service needs @prisma/client, the adapter and the generated code. Pruning against a package.json
# without it removes exactly the packages nothing else depends on; the image copies the original.
npm pkg delete dependencies.prisma scripts.postinstall
npm prune --omit=dev --ignore-scripts --no-audit --no-fund
# onnxruntime-node ships binaries for every platform; keep this one's.
ort=node_modules/onnxruntime-node/bin/napi-v6
find "$ort" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +
find "$ort/linux" -mindepth 1 -maxdepth 1 ! -name "$(node -p process.arch)" -exec rm -rf {} +
