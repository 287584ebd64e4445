#!/usr/bin/env bash
# Issue 13's figures at a million designs on a team catalogue, from the 1M synthetic SQLite catalogue
# that bench_scale.py builds (e.g. /work/cache/scale1m):
#   1. copy that catalogue (sqlite3's backup: one consistent file; the source is only read) with its
#      queries and exact-cosine truth into DATA;
#   2. bench_pg.py --store: write it into a team catalogue through the real store (team_data.write_team:
#      `swimsearch copy`'s own code, the same writer either way), then one search median and recall@10
#      of exact cosine, team catalogue beside the SQLite store, query by query in the same run;
#   3. bench_team_window.py: the window opening the 1M team catalogue to its first results.
#
#   bash bench/team_1m.sh [SOURCE_FOLDER] [DATA_FOLDER]
#
# Needs about 11 GB free on DATA's disk (SQLite copy 3 GB, team catalogue 4-5 GB, WAL). Takes about
# an hour on a loaded 2-core machine (the server's HNSW build of a million vectors is most of it).
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE=${1:-/work/cache/scale1m}
DATA=${2:-/work/cache/team1m/data-1m}
PY=${PY:-.venv/bin/python}
SIZE=1000000

[ -f "$SOURCE/synthetic-$SIZE.swimcat" ] || { echo "no synthetic-$SIZE.swimcat in $SOURCE yet"; exit 1; }
if [ -f "$SOURCE/STATUS" ]; then echo "source status: $(tail -1 "$SOURCE/STATUS")"; fi
mkdir -p "$DATA"
if [ ! -f "$DATA/synthetic-$SIZE.swimcat" ]; then
    free=$(df --output=avail -BG "$DATA" | tail -1 | tr -dc 0-9)
    [ "$free" -ge 11 ] || { echo "only ${free} GB free on the disk of $DATA: 11 GB needed"; exit 1; }
    echo "copying the SQLite catalogue ..."
    start=$(date +%s)
    "$PY" - "$SOURCE/synthetic-$SIZE.swimcat" "$DATA/synthetic-$SIZE.swimcat.part" <<'EOF'
import sqlite3, sys
source = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
target = sqlite3.connect(sys.argv[2])
source.backup(target)
target.execute("PRAGMA journal_mode=WAL")
target.close()
source.close()
EOF
    mv "$DATA/synthetic-$SIZE.swimcat.part" "$DATA/synthetic-$SIZE.swimcat"
    echo "copied in $(( $(date +%s) - start )) s"
fi
# bench_scale's queries and truth are bench_pg's (the same generator and centres: identical files at 100k)
[ -f "$DATA/queries.npy" ] || cp "$SOURCE/scale-queries.npy" "$DATA/queries.npy"
[ -f "$DATA/truth-$SIZE.npy" ] || { [ -f "$SOURCE/scale-truth-$SIZE.npy" ] && cp "$SOURCE/scale-truth-$SIZE.npy" "$DATA/truth-$SIZE.npy"; } || true

export SWIMSEARCH_BENCH_PG_DATA="$DATA"
start=$(date +%s)
nice -n 10 "$PY" bench/bench_pg.py --store --sizes $SIZE --reuse --startup 0 --store-data "$DATA"
echo "bench_pg.py --store: $(( $(date +%s) - start )) s"
start=$(date +%s)
QT_QPA_PLATFORM=offscreen nice -n 10 "$PY" bench/bench_team_window.py --size $SIZE --times 5
echo "bench_team_window.py: $(( $(date +%s) - start )) s"
