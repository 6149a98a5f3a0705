#!/usr/bin/env bash
# Ground the FHE unit on this machine's CPU: time each CKKS operation with SEAL over ring
# dimensions and levels ('embsim calibrate --backend fhe-cpu'), time real encrypted lookups for
# every point of experiments/validation_fhe.yaml (none of them used to calibrate), and compare.
# Run from the repository root with embsim[fhe] installed:
#   bash experiments/measurements/fhe_session.sh [NAME]
# NAME defaults to fhe-cpu-<cpu model>-<date>; REPEATS (default 3) timed passes per point;
# DIR (default experiments/measurements) is where the files go:
#   NAME-lscpu.txt               the machine (and its load when the session started)
#   NAME.yaml, NAME-mt.yaml      the fitted engines, one thread and every core (every value
#                                records the microbenchmark runs behind it)
#   NAME.parquet                 the measured lookups
#   NAME.validation.parquet, NAME-validation.png   the comparison
#   NAME-report.txt              MAPE, mean signed error, max error, rank correlation
set -euo pipefail
REPEATS=${REPEATS:-3}
DIR=${DIR:-experiments/measurements}
EMBSIM=${EMBSIM:-embsim}
model=$(bash "$(dirname "$0")/cpu_slug.sh" || true)
NAME=${1:-fhe-cpu-${model:-unknown}-$(date -u +%F)}
P="$DIR/$NAME"
EXP=experiments/validation_fhe.yaml
mkdir -p "$DIR"
{ lscpu; echo; echo "load: $(cat /proc/loadavg)"; } > "$P-lscpu.txt"
echo "[$NAME] calibrate"
"$EMBSIM" calibrate --backend fhe-cpu -o "$P.yaml"
echo "[$NAME] measure $EXP"
"$EMBSIM" measure "$EXP" --backend fhe-cpu --repeats "$REPEATS" --warmup 1 -o "$P.parquet"
echo "[$NAME] validate"
"$EMBSIM" validate "$EXP" --measurements "$P.parquet" --preset "$P.yaml" \
  --plot "$P-validation.png" --json > "$P.validation.json"
python3 - "$P" > "$P-report.txt" <<'PY'
import json, sys
s = json.load(open(sys.argv[1] + ".validation.json"))
print(f"{'points':>6}{'MAPE %':>8}{'mean %':>8}{'max %':>8}{'rank':>7}  machine warning")
print(f"{s['points']:>6}{s['mape']:>8.1f}{s['mean_error']:>+8.1f}{s['max_error']:>8.1f}"
      f"{s['rank_correlation']:>7.3f}  {'; '.join(s['machine_mismatch']) or 'none'}")
PY
rm -f "$P.validation.json"
cat "$P-report.txt"
