#!/usr/bin/env bash
# Resident memory of the real appliance process (bin/atm) as `make sim`
# runs it: bin/sim starts hostsim, proxysim and atm, does the demo
# withdrawal; this script then does ROUNDS more withdrawals by hand (the
# control endpoint and bin/phonesim, as in the README), lets the ATM idle
# IDLE seconds and reads /proc/<atm pid>/status throughout.
#
#   scripts/memrss.sh headless            # the ATM renders headless (EGL surfaceless)
#   xvfb-run -a -s "-screen 0 1280x1024x24" scripts/memrss.sh window
#                                         # the ATM opens its window on the X server
#
# It prints one line: mode, steady VmRSS / RssAnon / RssFile (medians over
# the last idle period), peak VmHWM (the kernel's high-water mark over the
# process's life) and the largest RssAnon seen (sampled every 0.1 s), in
# MiB; the resident memory per mapping at the end; and, when the appliance serves pprof (built with -tags pprof, as
# `make memrss` builds it), the Go runtime's view at the end (heap in use,
# memory obtained from the OS) and a heap profile in $OUT.
#
# BIN (default bin), ROUNDS (default 2), IDLE (default 20), OUT (default
# var/memrss) and ATM_PPROF_ADDR (default 127.0.0.1:6060) can be set.
# It needs the ports make sim uses (6100, 6200-6202, 6300) free.
set -euo pipefail

mode=${1:-headless}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "${BIN:-$root/bin}" && pwd)
rounds=${ROUNDS:-2}
idle=${IDLE:-20}
out=${OUT:-$root/var/memrss}
pprof=${ATM_PPROF_ADDR:-127.0.0.1:6060}
export ATM_PPROF_ADDR=$pprof

case $mode in
headless) window=false; unset DISPLAY WAYLAND_DISPLAY; export EGL_PLATFORM=surfaceless ;;
window)
	window=true
	[ -n "${DISPLAY:-}" ] || { echo "window mode needs an X server: run under xvfb-run" >&2; exit 2; }
	unset EGL_PLATFORM
	;;
*) echo "usage: $0 headless|window" >&2; exit 2 ;;
esac

mkdir -p "$out"
work=$(mktemp -d)
ln -s "$bin" "$work/bin"
ln -s "$root/configs" "$work/configs"
cd "$work"

sim_pid=""
sampler_pid=""
cleanup() {
	[ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null || true
	if [ -n "$sim_pid" ] && kill -0 "$sim_pid" 2>/dev/null; then
		kill -INT "$sim_pid" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$sim_pid" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -rf "$work"
}
trap cleanup EXIT

"$bin/sim" --window="$window" >sim.out 2>&1 &
sim_pid=$!

# The ATM's pid, from sim's "started atm pid N" line.
atm=""
for _ in $(seq 300); do
	atm=$(awk '$1 == "started" && $2 == "atm" { print $4 }' sim.out)
	[ -n "$atm" ] && break
	kill -0 "$sim_pid" 2>/dev/null || { cat sim.out >&2; exit 1; }
	sleep 0.1
done
[ -n "$atm" ] || { echo "the ATM did not start" >&2; cat sim.out >&2; exit 1; }

# Sample every 0.1 s: time (s), VmRSS, RssAnon, RssFile, VmHWM (kB).
(
	while [ -r "/proc/$atm/status" ]; do
		awk -v t="$(date +%s.%N)" '
			/^VmRSS:/ { r = $2 } /^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } /^VmHWM:/ { h = $2 }
			END { if (r != "") print t, r, a, f, h }' "/proc/$atm/status" 2>/dev/null || true
		sleep 0.1
	done
) >samples.txt &
sampler_pid=$!

# The demo withdrawal, then ROUNDS more by hand.
for _ in $(seq 1200); do
	grep -q "Press Ctrl-C" sim.out && break
	kill -0 "$sim_pid" 2>/dev/null || { cat sim.out >&2; exit 1; }
	sleep 0.1
done
grep -q "Press Ctrl-C" sim.out || { echo "the demo withdrawal did not finish" >&2; cat sim.out >&2; exit 1; }
for i in $(seq "$rounds"); do
	curl -fsS -X POST 'http://127.0.0.1:6300/withdraw?amount=20000' >/dev/null
	if ! bin/phonesim --proxy 127.0.0.1:6201 --config configs/phonesim.json --qr-png var/atm/screen.png \
		--scan-for 20s --customer 13800000001 --pin 123456 >"phone$i.out" 2>&1; then
		cp var/atm/screen.png "$out/failed-screen-$mode.png" 2>/dev/null || true
		echo "withdrawal $i failed (screen in $out/failed-screen-$mode.png):" >&2
		cat "phone$i.out" >&2
		exit 1
	fi
	# Wait for the session to end (cash taken, back to the welcome screen).
	for _ in $(seq 300); do
		curl -fsS http://127.0.0.1:6300/status | grep -q '"finished":true' && break
		sleep 0.1
	done
done
mark=$(tail -n1 samples.txt | awk '{ print $1 }')
sleep "$idle"

status=/proc/$atm/status
hwm=$(awk '/^VmHWM:/ { print $2 }' "$status")
gostats=""
if curl -fsS "http://$pprof/debug/pprof/heap?debug=1" >heap.txt 2>/dev/null; then
	curl -fsS "http://$pprof/debug/pprof/heap" >"$out/heap-$mode.pb.gz"
	gostats=$(awk '/^# HeapInuse = / { hi = $4 } /^# Sys = / { sys = $4 } /^# HeapReleased = / { rel = $4 } /^# HeapIdle = / { idle = $4 }
		END { printf "  go: heap in use %.1f, idle %.1f (released %.1f), obtained from the OS %.1f MiB", hi/1048576, idle/1048576, rel/1048576, sys/1048576 }' heap.txt)
fi
cp samples.txt "$out/samples-$mode.txt"
# Where the resident pages are at the end: per mapping (file name, or
# [anon] for anonymous memory: Go's heap and C's malloc and mmap alike).
awk '/^[0-9a-f]+-[0-9a-f]+ / { name = NF >= 6 ? $6 : "[anon]"; sub(".*/", "", name) }
	/^Rss:/ { rss[name] += $2 }
	END { for (n in rss) if (rss[n] >= 1024) printf "%.1f %s\n", rss[n]/1024, n }' "/proc/$atm/smaps" |
	sort -rn >"$out/smaps-$mode.txt"
awk -v mark="$mark" -v hwm="$hwm" -v mode="$mode" -v go="$gostats" '
	function median(a, n,   i, j, t) {
		for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t }
		return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
	}
	{ if ($3 > maxanon) maxanon = $3 }
	$1 > mark { n++; r[n] = $2; a[n] = $3; f[n] = $4 }
	END {
		printf "%-8s steady VmRSS %.1f MiB (RssAnon %.1f, RssFile %.1f); peak VmHWM %.1f MiB, largest RssAnon %.1f MiB%s\n",
			mode, median(r, n)/1024, median(a, n)/1024, median(f, n)/1024, hwm/1024, maxanon/1024, go
	}' samples.txt
printf '  resident by mapping (MiB, at least 1):'
awk '{ printf " %s %s;", $2, $1 }' "$out/smaps-$mode.txt"
echo
