#!/bin/sh
# Start the cardless-withdrawal appliance full screen under the cage Wayland
# kiosk compositor (https://github.com/cage-kiosk/cage): one application, no
# desktop, no way to switch away. Run from a systemd unit on a VT (see
# cardless-atm.service) or by hand from a text console for testing.
#
# Rendering needs no setting: on a PC with a GPU, cage (wlroots) renders
# with GLES2 and the appliance with OpenGL ES on the GPU's Mesa driver; on a
# PC without one (or without access to its render node), cage falls back to
# its pixman renderer and the appliance to Mesa's software rasterizer
# (llvmpipe). The appliance's "renderer" log line says which
# (kind=gpu|software, gl_renderer=...), and a start that cannot draw at all
# names the cause ("ui: no usable renderer: OpenGL ES (EGL): ..."). To force
# software rendering (a GPU whose driver misbehaves), set
# WLR_RENDERER=pixman and LIBGL_ALWAYS_SOFTWARE=1 in the unit's
# environment. TestKioskUnderCage (atm/appliance) starts this script under
# cage's headless backend and checks the screen.
set -eu

ATM_BIN="${ATM_BIN:-/usr/bin/atm}"
ATM_CONFIG="${ATM_CONFIG:-/etc/cardless-atm/atm.json}"
# More options for cage, e.g. "-r" to turn the display 90 degrees clockwise
# (a screen mounted in portrait; up to three times).
CAGE_OPTIONS="${CAGE_OPTIONS:-}"

# No screen blanking, no cursor.
export XKB_DEFAULT_LAYOUT="${XKB_DEFAULT_LAYOUT:-us}"
export WLR_NO_HARDWARE_CURSORS=1
export WLR_LIBINPUT_NO_DEVICES=1
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/run/user/$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 0700 "$XDG_RUNTIME_DIR"

# -d: no client-side decorations; -s: allow VT switching is NOT given, so
# Ctrl+Alt+Fn cannot leave the kiosk. cage exits when the appliance exits,
# and systemd restarts both. cage refuses to run as root.
# shellcheck disable=SC2086 # CAGE_OPTIONS is a list of options
exec cage -d $CAGE_OPTIONS -- "$ATM_BIN" -config "$ATM_CONFIG" -kiosk
