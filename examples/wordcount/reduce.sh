#!/bin/sh
# The reduce step of the word count, the group's follow-up, run by `claw-worker --exec` on the
# coordinator: $CLAW_INPUTS_DIR holds <id>.result for each map job that succeeded (and
# <id>.error for each one that did not, named on stderr). The result is one "word count" line per
# word over all of them, sorted by word.
export LC_ALL=C
for error in "$CLAW_INPUTS_DIR"/*.error; do
  [ -e "$error" ] && echo "wordcount: $(basename "$error" .error) failed: $(cat "$error")" >&2
done
for result in "$CLAW_INPUTS_DIR"/*.result; do
  [ -e "$result" ] && cat "$result"
done | awk 'NF == 2 { n[$1] += $2 } END { for (w in n) print w, n[w] }' | sort
