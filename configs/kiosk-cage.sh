#!/bin/sh
# Start the cardless-withdrawal appliance full screen under the cage Wayland
# kiosk compositor (https://github.com/cage-kiosk/cage): one application, no
# desktop, no way to switch away. Run from a systemd unit on a VT (see
# cardless-atm.service) or by hand from a text console for testing.
set -eu

ATM_BIN="${ATM_BIN:-/usr/bin/atm}"
ATM_CONFIG="${ATM_CONFIG:-/etc/cardless-atm/atm.json}"

# No screen blanking, no cursor. No automatic software-rendering fallback
# yet: on a PC without a GPU set WLR_RENDERER=pixman and
# LIBGL_ALWAYS_SOFTWARE=1 in the unit (issue 12).
export XKB_DEFAULT_LAYOUT="${XKB_DEFAULT_LAYOUT:-us}"
export WLR_NO_HARDWARE_CURSORS=1
export WLR_LIBINPUT_NO_DEVICES=1
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/run/user/$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 0700 "$XDG_RUNTIME_DIR"

# -d: no client-side decorations; -s: allow VT switching is NOT given, so
# Ctrl+Alt+Fn cannot leave the kiosk. cage exits when the appliance exits,
# and systemd restarts both.
exec cage -d -- "$ATM_BIN" -config "$ATM_CONFIG" -kiosk
