# Helpers for end-to-end tests that move containers (sourced after e2e.sh and netns.sh):
# read the numbered lines a guest prints and check that they run on without gap or repeat.

# last_num NAME HOST PREFIX: the last number printed after PREFIX in NAME's logs on HOST
last_num() { hgw "$2" logs "$1" 2>/dev/null | sed -n "s/^$3\([0-9][0-9]*\).*/\1/p" | tail -n 1; }
# seq_ok HOST NAME PREFIX: the numbers after PREFIX run 0,1,2,... with no gap or repeat
seq_ok() {
	hgw "$1" logs "$2" | sed -n "s/^$3\([0-9][0-9]*\).*/\1/p" |
		awk 'BEGIN { n = 0 } $1 != n { print "at line " NR ": expected " n ", got " $1; bad = 1; exit }
		     { n++ } END { if (!bad && n < 2) { print "only " n " lines"; bad = 1 } exit bad }'
}
# wait_num HOST NAME PREFIX MIN [TRIES]: wait until the last number is at least MIN
wait_num() {
	local i v
	for ((i = 0; i < ${5:-100}; i++)); do
		v=$(last_num "$2" "$1" "$3")
		[ -n "$v" ] && [ "$v" -ge "$4" ] && return 0
		sleep 0.2
	done
	return 1
}
