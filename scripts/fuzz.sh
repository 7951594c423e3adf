#!/bin/sh
#
# scripts/fuzz.sh [BUILD]: links every libFuzzer target fuzz/NAME_fuzz.c
# with clang -fsanitize=fuzzer,address,undefined against BUILD/libmdm.a
# (default build-fuzz; `make fuzz` builds it from the library's own object
# list with FUZZ=1 and passes the libraries as FUZZ_LIBS), seeds
# BUILD/corpus/NAME and runs each target for FUZZ_SECONDS (default 60).  Exits non-zero if any target crashes, leaks, times out or runs out
# of memory; the input is kept in build-fuzz/artifacts/NAME/ and belongs
# in a regression test.
#
# Each target says what it needs in its header comment:
#   fuzz-max-len: largest input tried (default 65536)
#   fuzz-vectors: seed with shared vector files containing this string
#   fuzz-seeds:   seed with these shared vector files (paths under it)
#   fuzz-seed-dirs: seed with every file under these shared vector dirs
#   fuzz-dict:    one libFuzzer dictionary token per line
# tests/unit/data/NAME/, when present, seeds NAME as well.  Shared vectors
# (MDM_VECTORS, default ../shared/vectors) are copied into build-fuzz only,
# never into the tree.
#
# fuzz/regress/NAME/, when present, seeds NAME too: inputs that once
# crashed it.
#
# Environment: FUZZ_LIBS and FUZZ_CFLAGS (pkg-config output for libmdm's
# packages; required, the Makefile passes them), FUZZ_SECONDS, FUZZ_TIMEOUT (seconds per input, default 10),
# FUZZ_TARGETS (names to run, default all), FUZZ_ARGS (extra libFuzzer
# flags), CLANG (default clang).

set -eu

cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}
FUZZ_ARGS=${FUZZ_ARGS:-}
CLANG=${CLANG:-clang}
VECTORS=${MDM_VECTORS:-../shared/vectors}
OUT=${1:-build-fuzz}
LIBMDM="$OUT/libmdm.a"

# ota_fuzz reads share/apple-ota-trust.pem: MDM_SRCDIR makes it absolute.
CFLAGS="-std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -O1
	-fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
	-fno-sanitize-recover=all -Wall -Wextra -Werror -iquote lib
	-DMDM_SRCDIR=\"$(pwd)\""

say() {
	printf 'fuzz: %s\n' "$*" >&2
}

# The value(s) of a "fuzz-KEY:" line in a target's comments.
tag() {
	sed -n "s/^ \* fuzz-$2: *//p" "$1"
}

if ! command -v "$CLANG" >/dev/null 2>&1; then
	say "$CLANG not found (make deps installs it)"
	exit 1
fi

if [ ! -f "$LIBMDM" ] || [ -z "${FUZZ_LIBS:-}" ]; then
	say "$LIBMDM or FUZZ_LIBS missing: run make fuzz"
	exit 1
fi
mkdir -p "$OUT"
failed=""
ran=0

for src in fuzz/*_fuzz.c; do
	[ -e "$src" ] || continue
	name=$(basename "$src" _fuzz.c)
	if [ -n "${FUZZ_TARGETS:-}" ]; then
		case " $FUZZ_TARGETS " in
		*" $name "*) ;;
		*) continue ;;
		esac
	fi

	max_len=$(tag "$src" max-len)
	vec_pattern=$(tag "$src" vectors)
	vec_seeds=$(tag "$src" seeds)
	vec_dirs=$(tag "$src" seed-dirs)

	bin="$OUT/${name}_fuzz"
	say "building $bin"
	# shellcheck disable=SC2086 # flag lists are split on purpose
	"$CLANG" $CFLAGS ${FUZZ_CFLAGS:-} -o "$bin" "$src" "$LIBMDM" $FUZZ_LIBS

	corpus="$OUT/corpus/$name"
	artifacts="$OUT/artifacts/$name"
	mkdir -p "$corpus" "$artifacts"
	if [ -d "tests/unit/data/$name" ]; then
		find "tests/unit/data/$name" -type f ! -name '*.md' -exec cp {} "$corpus/" \;
	fi
	if [ -d "fuzz/regress/$name" ]; then
		find "fuzz/regress/$name" -type f ! -name '*.md' -exec cp {} "$corpus/" \;
	fi
	if [ -n "$vec_pattern" ]; then
		if [ -d "$VECTORS" ]; then
			# -I: text files only (DER files that embed a plist are not seeds).
			grep -rlIF -- "$vec_pattern" "$VECTORS" 2>/dev/null |
				while IFS= read -r f; do
					cp "$f" "$corpus/vector-$(cksum <"$f" | cut -d' ' -f1)"
				done
			say "$name: $(find "$corpus" -name 'vector-*' | wc -l) seeds from $VECTORS"
		else
			say "$name: $VECTORS absent; no vector seeds (set MDM_VECTORS)"
		fi
	fi

	# fuzz-seeds: binary vector files named one by one (DER messages).
	if [ -n "$vec_seeds" ] && [ -d "$VECTORS" ]; then
		for f in $vec_seeds; do
			[ -f "$VECTORS/$f" ] && cp "$VECTORS/$f" "$corpus/vector-$(cksum <"$VECTORS/$f" | cut -d' ' -f1)"
		done
		say "$name: seeded with $(echo "$vec_seeds" | wc -w) named vector files"
	fi

	# fuzz-seed-dirs: whole vector directories (the malformed CMS corpus).
	if [ -n "$vec_dirs" ] && [ -d "$VECTORS" ]; then
		for d in $vec_dirs; do
			[ -d "$VECTORS/$d" ] || continue
			find "$VECTORS/$d" -type f | while IFS= read -r f; do
				cp "$f" "$corpus/vector-$(cksum <"$f" | cut -d' ' -f1)"
			done
		done
		say "$name: seeded with the files under $(echo "$vec_dirs" | wc -w) vector dirs"
	fi

	dict="$OUT/$name.dict"
	tag "$src" dict >"$dict"
	dict_arg=""
	[ -s "$dict" ] && dict_arg="-dict=$dict"

	say "running $name for ${FUZZ_SECONDS}s (corpus: $(find "$corpus" -type f | wc -l) files)"
	ran=$((ran + 1))
	# shellcheck disable=SC2086 # FUZZ_ARGS is split on purpose
	if ! "$bin" -max_total_time="$FUZZ_SECONDS" -max_len="${max_len:-65536}" \
		-timeout="$FUZZ_TIMEOUT" -print_final_stats=1 $dict_arg \
		-artifact_prefix="$artifacts/" $FUZZ_ARGS "$corpus"; then
		say "$name FAILED; inputs in $artifacts/"
		failed="$failed $name"
	fi
done

if [ "$ran" -eq 0 ]; then
	say "no fuzz targets ran"
	exit 1
fi
if [ -n "$failed" ]; then
	say "failed:$failed"
	exit 1
fi
say "all $ran target(s) ran ${FUZZ_SECONDS}s without a finding"
