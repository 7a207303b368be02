#!/bin/bash
# SIMULATOR (ascend-fa): packs a staged package directory into a self-extracting .run file.
# Stands in for CANN's patched makeself 2.5.0 (which the simulator does not ship): a small shell
# header (makeself_header.sh) followed by a gzip'd tar payload whose SHA256 the header embeds.
# The tar is reproducible (sorted names, fixed mtime and owner), so the same inputs give the same .run.
# Usage: pack.sh <stage dir> <output .run> <label>
set -e
stage="$1"
out="$2"
label="$3"
here=$(cd "$(dirname "$0")" && pwd)
payload=$(mktemp)
trap 'rm -f "${payload}"' EXIT

(cd "${stage}" && tar --sort=name --mtime='2025-01-01 00:00:00Z' --owner=0 --group=0 --numeric-owner \
    --format=gnu -cf - .) | gzip -n -6 > "${payload}"
sha=$(sha256sum "${payload}" | cut -d' ' -f1)
bytes=$(wc -c < "${payload}" | tr -d ' ')
lines=$(wc -l < "${here}/makeself_header.sh" | tr -d ' ')

sed -e "s|@LABEL@|${label}|" -e "s|@SHA256@|${sha}|" -e "s|@PAYLOAD_BYTES@|${bytes}|" \
    -e "s|@HEADER_LINES@|${lines}|" "${here}/makeself_header.sh" > "${out}"
cat "${payload}" >> "${out}"
chmod 755 "${out}"
