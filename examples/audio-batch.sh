#!/bin/sh
# The audio of every URL in urls.txt, four at a time. One JSON line per URL goes to
# results.jsonl; the paths that worked are printed, the URLs that failed go to retry.txt.
#   sh audio-batch.sh [urls.txt]
set -u
urls=${1:-urls.txt}

cat "$urls" | xdl fetch --audio -j 4 > results.jsonl
status=$?    # 0 all ok, 1 some failed (the others still ran), 2 usage, 3 could not work

jq -r 'select(.ok) | .path' results.jsonl
jq -r 'select(.ok | not) | .url' results.jsonl > retry.txt
exit "$status"
