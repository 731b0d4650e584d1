#!/usr/bin/env bash
# The layers of godwit (docs/architecture.md), from the ground up:
#   common                 errors, JSON/base64 helpers, transport, frames, the container record
#   hv, image, migproto,   QEMU and QMP; images; the migration wire format, policy, snapshot
#   hostnet                file format; the host's networks: bridges, taps, NAT, addresses
#                          (side by side: none includes another)
#   shim                   one per container: lifecycle, agent link, logs, the migration engine
#   cli                    the godwit command
# A file may include its own layer's headers and those of the layers below it, nothing else;
# the guest agent (guest/agent) only common's. Prints every include that points elsewhere and
# fails; `make` runs it before it links anything. Nor may anything outside src/hv send QMP
# commands or wait for QMP events itself (qmp_execute, qmp_execute_with_fd, qmp_wait_event):
# that is what hv_vm.h's typed calls are for; nor read the environment below the CLI but in
# src/common/knobs.c. Usage: scripts/check-layers.sh [DIR]
set -u
cd "${1:-$(dirname "$0")/..}" || exit 2

# the layer of a header under include/godwit/
header_layer() {
	case $1 in
	err.h | util.h | ctl.h | frame.h | net.h | proc.h | container.h | logfile.h | version.h | knobs.h | mount.h | tls.h) echo common ;;
	volume.h) echo image ;;
	hv.h | hv_vm.h | qmp.h) echo hv ;;
	image.h | runtime_spec.h) echo image ;;
	hostnet.h) echo hostnet ;;
	migproto.h | policy.h | snapfile.h) echo migproto ;;
	shim_main.h) echo shim ;;
	*) echo unknown ;;
	esac
}
# may a file of layer $1 include a header of layer $2?
allowed() {
	[ "$1" = "$2" ] && return 0
	case $1:$2 in
	hv:common | image:common | migproto:common | hostnet:common | agent:common) return 0 ;;
	shim:common | shim:hv | shim:image | shim:migproto | shim:hostnet) return 0 ;;
	cli:common | cli:hv | cli:image | cli:migproto | cli:hostnet | cli:shim) return 0 ;;
	esac
	return 1
}

bad=0
check() { # FILE LAYER
	local f=$1 from=$2 inc to
	while IFS= read -r inc; do
		case $inc in
		godwit/*) to=$(header_layer "${inc#godwit/}") ;;
		../*/*) to=${inc#../} to=${to%%/*} ;;
		*/*) to=unknown ;;
		*) [ -f "$(dirname "$f")/$inc" ] && to=$from || to=unknown ;;
		esac
		if [ "$to" = unknown ]; then
			echo "$f: includes \"$inc\": a header of no known layer (scripts/check-layers.sh)"
			bad=1
		elif ! allowed "$from" "$to"; then
			echo "$f: includes \"$inc\" ($to) from layer $from: points up or sideways"
			bad=1
		fi
	done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
}
for f in include/godwit/*.h; do
	l=$(header_layer "$(basename "$f")")
	[ "$l" = unknown ] && { echo "$f: in no layer: add it to scripts/check-layers.sh"; bad=1; continue; }
	check "$f" "$l"
done
for d in src/*/; do
	l=$(basename "$d")
	case $l in common | hv | image | migproto | hostnet | shim | cli) ;;
	*) echo "$d: a folder in no layer: add it to scripts/check-layers.sh"; bad=1; continue ;;
	esac
	for f in "$d"*.c "$d"*.h; do [ -f "$f" ] && check "$f" "$l"; done
done
for f in guest/agent/*.c guest/agent/*.h; do [ -f "$f" ] && check "$f" agent; done

# QMP commands and events are named only in src/hv: above it QEMU is driven through the typed
# calls of include/godwit/hv_vm.h, so the raw calls that take a command or event name may be
# called nowhere else
while IFS= read -r hit; do
	call=${hit##*:} # FILE:LINE:NAME(
	echo "${hit%:*}: calls ${call%%[[:space:](]*} outside src/hv: use (or add) a typed call in include/godwit/hv_vm.h"
	bad=1
done < <(grep -rnoE '\bqmp_(execute|execute_with_fd|wait_event)[[:space:]]*\(' \
	--include='*.c' --include='*.h' src guest | grep -v '^src/hv/')
# the environment is read in one place below the CLI: src/common/knobs.c (include/godwit/knobs.h)
while IFS= read -r hit; do
	echo "${hit%:*}: reads the environment: add a knob to include/godwit/knobs.h instead"
	bad=1
done < <(grep -rnoE '\b(secure_)?getenv[[:space:]]*\(' --include='*.c' --include='*.h' src |
	grep -vE '^src/(cli/|common/knobs\.c:)')
[ "$bad" -eq 0 ] &&
	echo "layers: every include points down, no raw QMP call outside src/hv, getenv only in knobs.c and the CLI"
exit "$bad"
