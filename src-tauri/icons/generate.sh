#!/usr/bin/env bash
# Draws the app icon and the tray state icons from simple shapes with ImageMagick 6 (`apt install imagemagick`).
# The PNGs are committed; run this only to change them: bash src-tauri/icons/generate.sh
#
# App icon: a white gateway arch on an indigo rounded square.
# Tray icons: a coloured disc with a dark outer ring and a white inner ring (legible on light and dark panels),
# each state with its own glyph so colour is never the only cue:
#   ok        green disc, arch          degraded  amber disc, "!"
#   down      red disc, "×"             paused    grey disc, two bars
set -euo pipefail
cd "$(dirname "$0")"

S=1024 # drawn large, then scaled down (anti-aliasing)

app_icon() {
    convert -size ${S}x${S} xc:none \
        -fill '#4338ca' -draw "roundrectangle 64,64 960,960 200,200" \
        -fill white -draw "path 'M 212,840 L 212,500 A 300,300 0 0 1 812,500 L 812,840 L 692,840 L 692,500 A 180,180 0 0 0 332,500 L 332,840 Z'" \
        -draw "polygon 440,600 440,800 600,700" \
        -depth 8 "$1"
}

tray_icon() { # $1 out, $2 fill colour, $3... glyph draw commands (white)
    local out=$1 fill=$2
    shift 2
    convert -size ${S}x${S} xc:none \
        -fill '#111827' -draw "circle 512,512 512,24" \
        -fill white -draw "circle 512,512 512,88" \
        -fill "$fill" -draw "circle 512,512 512,136" \
        -fill white "$@" \
        -resize 64x64 -depth 8 "PNG32:$out"
}

app_icon /tmp/llm-gateway-icon-$$.png
for size in 32 128 256 512; do
    convert /tmp/llm-gateway-icon-$$.png -resize ${size}x${size} -depth 8 "PNG32:$size.png"
done
mv 32.png 32x32.png
mv 128.png 128x128.png
mv 256.png 128x128@2x.png
mv 512.png icon.png
convert /tmp/llm-gateway-icon-$$.png -define icon:auto-resize=256,128,64,48,32,16 icon.ico
rm -f /tmp/llm-gateway-icon-$$.png

# Glyphs, in the 1024 canvas (disc radius 376 inside the rings).
ARCH=(-draw "path 'M 304,740 L 304,500 A 208,208 0 0 1 720,500 L 720,740 L 616,740 L 616,500 A 104,104 0 0 0 408,500 L 408,740 Z'")
BANG=(-draw "roundrectangle 452,260 572,600 40,40" -draw "circle 512,720 512,656")
CROSS=(-fill none -stroke white -strokewidth 120 -draw "line 360,360 664,664" -draw "line 664,360 360,664")
BARS=(-draw "roundrectangle 372,300 472,724 30,30" -draw "roundrectangle 552,300 652,724 30,30")

tray_icon tray-ok.png '#15803d' "${ARCH[@]}"
tray_icon tray-degraded.png '#d97706' "${BANG[@]}"
tray_icon tray-down.png '#b91c1c' "${CROSS[@]}"
tray_icon tray-paused.png '#4b5563' "${BARS[@]}"
