#!/bin/sh
# Every episode of a feed as MP3 (128k, loudness-normalised, tagged, with cover art) in a
# folder per show. The podcast profile keeps an archive, so running it again (from cron)
# downloads only the new episodes.
#   sh podcast.sh FEED_URL [DIR]
set -eu
feed=$1
dir=${2:-"$HOME/Podcasts"}

xdl info --flat "$feed" | xdl fetch --profile podcast -o "$dir"
