#!/usr/bin/env bash
# Build gtmsim/report/plotly-gtmsim.min.js: plotly.js with only the trace types the reports draw
# (entry.js). The whole plotly.js is 4.8 MB, and a browser spends about two seconds reading and
# starting it before it draws anything; this bundle is 1.4 MB and starts in about half that.
# Needs node and npm. Rebuild when the installed plotly (Python) moves to another major version
# of plotly.js (tests/test_plotlyjs.py says so), or when a report draws a new trace type.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../../gtmsim/report/plotly-gtmsim.min.js"
TRACES="bar box heatmap histogram sankey scatter"  # as registered in entry.js

cd "$here"
npm ci --ignore-scripts --silent
version="$(node -p "require('plotly.js/package.json').version")"
banner="/* plotly.js v$version, traces: $TRACES. Copyright 2012-2026, Plotly, Inc.; MIT license. Built for gtmsim by scripts/plotly_bundle/build.sh */"
tmp="$(mktemp "$out.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
npx esbuild entry.js --bundle --minify --format=iife --global-name=Plotly --target=es2016 \
    --define:global=window --define:define.amd=false --loader:.css=empty \
    --legal-comments=eof --banner:js="$banner" --log-level=warning --outfile="$tmp"
if grep -qi '</script' "$tmp"; then
    echo "build.sh: the bundle contains '</script', which would end the report's script early" >&2
    exit 1
fi
mv "$tmp" "$out"
trap - EXIT
echo "wrote $out ($(wc -c < "$out") bytes, plotly.js v$version)"
