#!/bin/sh
# `make demo`: start the bundled loopback media site, run real pipelines against it,
# print each command exactly as it runs, then its JSON lines; stop the site. No internet.
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

# note WHY: say what comes next; run 'COMMAND': print it as it is run, then run it.
note() { printf '\n\033[1m# %s\033[0m\n' "$*" >&2; }
run() { printf '\033[1m$ %s\033[0m\n' "$1" >&2; eval "$1"; }

note "metadata of a page"
run "xdl info --json $base/watch.html"

note "the format that plays in QuickTime"
run "xdl formats --json $base/multi.html --recommend --platform mac"

note "a podcast feed (RSS with the iTunes namespace): one line per episode"
run "xdl info --flat --json $base/podcast.xml"

note "yt-dlp for the page, HTTP for the PDF"
run "xdl fetch -o downloads $base/watch.html $base/files/report"

note "the feed's episodes as MP3s in a folder per show, then again: nothing new (the archive)"
run "xdl info --flat --json $base/podcast.xml | xdl fetch --audio --audio-format mp3 -j 2 -o podcast --template '%(playlist)s/%(title)s [%(id)s].%(ext)s' --archive archive.txt"
run "xdl info --flat --json $base/podcast.xml | xdl fetch --audio --audio-format mp3 -j 2 -o podcast --template '%(playlist)s/%(title)s [%(id)s].%(ext)s' --archive archive.txt"

note "captions into Markdown notes"
run "xdl transcript -l all $base/watch.html | xdl to-markdown"
cat ./*.en.md >&2

note "a transcript as Markdown with timestamps, on stdout"
run "xdl transcript -F md --timestamps --stdout $base/watch.html" >&2

note "a config file: [defaults.fetch] and a [profiles.talks] table, then --profile talks"
mkdir -p "$XDL_HOME/config"
printf '[defaults.fetch]\noutput-dir = "videos"\n\n[profiles.talks]\nquality = "360p"\ncontainer = "mp4"\n' \
  > "$XDL_HOME/config/config.toml"
cat "$XDL_HOME/config/config.toml" >&2
run "xdl fetch --profile talks $base/multi.html"

note "is this machine ready?"
run "xdl doctor --json" || true
