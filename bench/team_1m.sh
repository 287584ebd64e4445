#!/usr/bin/env bash
# Issue 13's figures at a million designs on a team catalogue, from the 1M synthetic SQLite catalogue
# that bench_scale.py builds (e.g. /work/cache/scale1m):
#   1. link that catalogue (only ever opened read-only here; COPY=1: a copy by sqlite3's backup) with
#      its queries and exact-cosine truth into DATA;
#   2. bench_pg.py --store: write it into a team catalogue through the real store (team_data.write_team:
#      `swimsearch copy`'s own code, the same writer either way), then one search median and recall@10
#      of exact cosine, team catalogue beside the SQLite store, query by query in the same run;
#   3. bench_team_window.py: the window opening the 1M team catalogue to its first results.
#
#   bash bench/team_1m.sh [SOURCE_FOLDER] [DATA_FOLDER]
#
# Both stores are searched from their search caches, as the app searches them: the SQLite catalogue's array
# cache in $SWIMSEARCH_CACHE_DIR, the team catalogue's client cache (team_replica.py) in
# $SWIMSEARCH_TEAM_CACHE_DIR (default: team/ under it); either is made first when missing (8.8 GB each at
# 1M, 3-5 minutes; SWIMSEARCH_CACHE_MARGIN_GB lowers the 10 GB the maker leaves free on a nearly full disk).
#
# Needs about 8 GB free on DATA's disk (team catalogue 4-5 GB, WAL up to 2 GB; COPY=1 copies the SQLite
# catalogue too: 3.6 GB more). Takes about an hour on a loaded 2-core machine (writing a million designs
# and the server's HNSW build); with the team catalogue written (written-1000000.json in DATA) a rerun
# only measures.
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE=${1:-/work/cache/scale1m}
DATA=${2:-/work/cache/team1m/data-1m}
PY=${PY:-.venv/bin/python}
SIZE=1000000

[ -f "$SOURCE/synthetic-$SIZE.swimcat" ] || { echo "no synthetic-$SIZE.swimcat in $SOURCE yet"; exit 1; }
if [ -f "$SOURCE/STATUS" ]; then echo "source status: $(tail -1 "$SOURCE/STATUS")"; fi
mkdir -p "$DATA"
free=$(df --output=avail -BG "$DATA" | tail -1 | tr -dc 0-9)
[ -e "$DATA/synthetic-$SIZE.swimcat" ] || [ "$free" -ge 8 ] || { echo "only ${free} GB free on the disk of $DATA: 8 GB needed"; exit 1; }
if [ -n "${COPY:-}" ] && [ ! -e "$DATA/synthetic-$SIZE.swimcat" ]; then
    echo "copying the SQLite catalogue ..."
    start=$(date +%s)
    "$PY" - "$SOURCE/synthetic-$SIZE.swimcat" "$DATA/synthetic-$SIZE.swimcat.part" <<'EOF2'
import sqlite3, sys
source = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
target = sqlite3.connect(sys.argv[2])
source.backup(target)
target.close()
source.close()
EOF2
    mv "$DATA/synthetic-$SIZE.swimcat.part" "$DATA/synthetic-$SIZE.swimcat"
    echo "copied in $(( $(date +%s) - start )) s"
fi
# Without COPY=1 a link: everything below opens the SQLite catalogue read-only (write_team, the searches,
# bench_pg's format check), and the truth is taken from SOURCE, so nothing computes it by opening it writable.
[ -e "$DATA/synthetic-$SIZE.swimcat" ] || ln -s "$SOURCE/synthetic-$SIZE.swimcat" "$DATA/synthetic-$SIZE.swimcat"
# bench_scale's queries and truth are bench_pg's (the same generator and centres: identical files at 100k)
[ -f "$DATA/queries.npy" ] || cp "$SOURCE/scale-queries.npy" "$DATA/queries.npy"
[ -f "$DATA/truth-$SIZE.npy" ] || cp "$SOURCE/scale-truth-$SIZE.npy" "$DATA/truth-$SIZE.npy"

export SWIMSEARCH_BENCH_PG_DATA="$DATA"
start=$(date +%s)
nice -n 10 "$PY" bench/bench_pg.py --store --sizes $SIZE --reuse --startup 0 --store-data "$DATA"
echo "bench_pg.py --store: $(( $(date +%s) - start )) s"
start=$(date +%s)
QT_QPA_PLATFORM=offscreen nice -n 10 "$PY" bench/bench_team_window.py --size $SIZE --times 5
echo "bench_team_window.py: $(( $(date +%s) - start )) s"
