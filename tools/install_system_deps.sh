#!/usr/bin/env bash
# System packages that pip cannot provide, for Debian/Ubuntu: GStreamer (the `gstreamer` source
# backend and the RTSP test server) and what PyGObject and pycairo compile against (the `gst` extra
# builds from source: PyPI has no Linux wheels for them).
#
# Idempotent: when dpkg shows every package installed it does nothing, without root or network.
# Otherwise it installs them with apt-get as root, or, run by another user, prints the command and
# exits 1. `make test` and .ci/run call it first, so a fresh machine needs nothing else.
set -euo pipefail

packages=(
  # GStreamer 1.x: core tools, plugins (x264enc is in ugly, avdec_h264 in libav, rtspsrc in good)
  gstreamer1.0-tools
  gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly
  gstreamer1.0-libav
  # introspection data for `gi.require_version("Gst" / "GstApp" / "GstRtspServer", "1.0")`
  gir1.2-gstreamer-1.0
  gir1.2-gst-plugins-base-1.0
  gir1.2-gst-rtsp-server-1.0
  # to build PyGObject (<3.52 uses girepository-1.0) and pycairo from source
  libgirepository1.0-dev
  libcairo2-dev
  pkg-config
  gcc
  # for a Debian python3 (a python.org or pyenv build carries its own headers and venv)
  python3-dev
  python3-venv
)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install_system_deps.sh: not a Debian/Ubuntu system (no dpkg); install GStreamer 1.x with its" \
       "good/bad/ugly/libav plugins, the RTSP server library, GObject introspection data and" \
       "gobject-introspection + cairo development files by hand" >&2
  exit 1
fi

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "system packages: all ${#packages[@]} present"
  exit 0
fi

command=(apt-get install -y --no-install-recommends "${missing[@]}")
if [[ $(id -u) -ne 0 ]]; then
  echo "missing system packages: ${missing[*]}" >&2
  echo "install them as root with:  apt-get update && ${command[*]}" >&2
  exit 1
fi

echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
"${command[@]}"
