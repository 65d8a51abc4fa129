#!/bin/sh
# `make demo`: start the bundled loopback media site, run real pipelines against it,
# print the JSON lines, stop the site. No internet needed.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'kill "$site_pid" 2>/dev/null || true; rm -rf "$work"' EXIT INT TERM
python "$here/tests/media_site.py" > "$work/site.url" &
site_pid=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s "$work/site.url" ] && break; sleep 0.2; done
base=$(cat "$work/site.url")
export XDL_HOME="$work/home"
cd "$work"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; }

step "xdl info $base/watch.html"
xdl info --json "$base/watch.html"

step "xdl formats $base/multi.html --recommend --platform mac"
xdl formats --json "$base/multi.html" --recommend --platform mac

step "xdl info --flat $base/feed.xml   (a podcast feed: one line per episode)"
xdl info --flat --json "$base/feed.xml"

step "xdl fetch $base/watch.html $base/files/report -o downloads   (yt-dlp for the page, HTTP for the PDF)"
xdl fetch -o downloads "$base/watch.html" "$base/files/report"

step "xdl info --flat $base/feed.xml | xdl fetch --audio -j 2 -o podcast   (then again: nothing new)"
xdl info --flat --json "$base/feed.xml" | xdl fetch --audio -j 2 -o podcast --archive archive.txt
xdl info --flat --json "$base/feed.xml" | xdl fetch --audio -j 2 -o podcast --archive archive.txt

step "xdl transcript -l all $base/watch.html | xdl to-markdown   (captions into Markdown notes)"
xdl transcript -l all "$base/watch.html" | xdl to-markdown
cat ./*.en.md >&2

step "xdl transcript -F md --timestamps --stdout $base/watch.html"
xdl transcript -F md --timestamps --stdout "$base/watch.html" >&2

step "a config file: [defaults.fetch] and a [profiles.talks] table, then xdl fetch --profile talks"
mkdir -p "$XDL_HOME/config"
printf '[defaults.fetch]\noutput-dir = "videos"\n\n[profiles.talks]\nquality = "360p"\ncontainer = "mp4"\n' \
  > "$XDL_HOME/config/config.toml"
cat "$XDL_HOME/config/config.toml" >&2
xdl fetch --profile talks "$base/multi.html"

step "xdl doctor"
xdl doctor --json || true
