#!/bin/sh
# Regenerates the small real media the loopback test site serves (committed: a few KB each).
# Needs ffmpeg. Run from this folder: sh make.sh
set -eu
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }
src="testsrc2=size=320x180:rate=15:duration=2"
tone="sine=frequency=440:duration=2:sample_rate=44100"
# 180p and 360p H.264/AAC MP4 (the "several sources" page), VP9/Opus WebM, AAC audio.
ff -f lavfi -i "$src" -f lavfi -i "$tone" -c:v libx264 -preset veryslow -crf 40 -pix_fmt yuv420p \
   -c:a aac -b:a 24k -movflags +faststart -map_metadata -1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact clip-180p.mp4
ff -f lavfi -i "testsrc2=size=640x360:rate=15:duration=2" -f lavfi -i "$tone" -c:v libx264 -preset veryslow -crf 45 \
   -pix_fmt yuv420p -c:a aac -b:a 24k -movflags +faststart -map_metadata -1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact clip-360p.mp4
ff -f lavfi -i "$src" -f lavfi -i "$tone" -c:v libvpx-vp9 -crf 50 -b:v 0 -deadline good -c:a libopus -b:a 16k \
   -map_metadata -1 -fflags +bitexact clip-180p.webm
ff -f lavfi -i "$tone" -c:a aac -b:a 32k -map_metadata -1 -fflags +bitexact -flags:a +bitexact tone.m4a
# An HLS stream of the 180p clip: playlist + segments.
mkdir -p hls
ff -i clip-180p.mp4 -c copy -f hls -hls_time 1 -hls_list_size 0 -hls_segment_filename 'hls/seg%d.ts' hls/index.m3u8
# Two MP3 episodes for the loopback podcast feeds (RSS and Atom enclosures).
ff -f lavfi -i "sine=frequency=220:duration=1:sample_rate=22050" -c:a libmp3lame -b:a 32k -map_metadata -1 -fflags +bitexact -flags:a +bitexact low.mp3
ff -f lavfi -i "sine=frequency=880:duration=1:sample_rate=22050" -c:a libmp3lame -b:a 32k -map_metadata -1 -fflags +bitexact -flags:a +bitexact high.mp3
# A small cover image for the podcast feeds (itunes:image).
ff -f lavfi -i "color=c=orange:s=64x64:d=1" -frames:v 1 -map_metadata -1 -fflags +bitexact -flags:v +bitexact cover.jpg
