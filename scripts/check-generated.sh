#!/usr/bin/env bash
# Regenerates gen/ from proto/ and fails if the committed code differs: generated code must
# never be stale. buf runs offline with the local protoc-gen-ts_proto plugin.
set -euo pipefail
cd "$(dirname "$0")/.."
npx --no-install buf generate
if ! git diff --quiet -- gen || [ -n "$(git ls-files --others --exclude-standard -- gen)" ]; then
  echo "generated code in gen/ is stale: run 'npm run generate' and commit the result" >&2
  git status --short -- gen >&2
  exit 1
fi
