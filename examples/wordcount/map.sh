#!/bin/sh
# The map step of the word count, run by `claw-worker --exec`: the text of one file arrives on
# stdin; the result is one "word count" line per distinct word in it. A word is a run of ASCII
# letters, lower-cased; everything else separates words (the same rule as scripts/wordcount.sh's
# check).
export LC_ALL=C
tr -cs 'A-Za-z' '\n' | tr 'A-Z' 'a-z' | awk 'NF { n[$1]++ } END { for (w in n) print w, n[w] }'
