#!/usr/bin/env bash
# Ground the CPU model on this machine: calibrate a preset from microbenchmarks, measure the
# design set (validation_cpu.yaml) and the test set (validation_cpu_test.yaml), and validate
# both, reported separately. Run from the repository root with embsim installed:
#   bash experiments/measurements/cpu_session.sh [NAME]
# NAME defaults to cpu-<cpu model>-<date>; ROUNDS (default 3) is passed as --rounds; DIR (default
# experiments/measurements) is where the files go:
#   NAME-lscpu.txt          the machine
#   NAME-preset.yaml        the calibrated preset (every value with the microbenchmark behind it)
#   NAME.parquet            design-set measurements; NAME-test.parquet the test set's
#   NAME.validation.parquet, NAME-test.validation.parquet, NAME-validation.png,
#   NAME-test-validation.png   the comparisons
#   NAME-report.txt         both sets' MAPE, mean signed error, max error and rank correlation
set -euo pipefail
ROUNDS=${ROUNDS:-3}
DIR=${DIR:-experiments/measurements}
EMBSIM=${EMBSIM:-embsim}
model=$(bash "$(dirname "$0")/cpu_slug.sh" || true)
NAME=${1:-cpu-${model:-unknown}-$(date -u +%F)}
P="$DIR/$NAME"
mkdir -p "$DIR"
lscpu > "$P-lscpu.txt"
echo "[$NAME] calibrate (rounds $ROUNDS)"
"$EMBSIM" calibrate --backend torch-cpu --rounds "$ROUNDS" -o "$P-preset.yaml"
for set in design test; do
  if [ $set = design ]; then exp=experiments/validation_cpu.yaml; out=$P
  else exp=experiments/validation_cpu_test.yaml; out=$P-test; fi
  echo "[$NAME] measure the $set set ($exp)"
  "$EMBSIM" measure "$exp" --backend torch-cpu --no-flush --rounds "$ROUNDS" -o "$out.parquet"
  echo "[$NAME] validate the $set set"
  "$EMBSIM" validate "$exp" --measurements "$out.parquet" --preset "$P-preset.yaml" \
    --plot "$out-validation.png" --json > "$out.validation.json"
done
python3 - "$P" > "$P-report.txt" <<'EOF'
import json, sys
prefix = sys.argv[1]
print(f"{'set':<7}{'points':>7}{'MAPE %':>8}{'mean %':>8}{'max %':>8}{'rank':>7}  machine warning")
for name, path in (("design", prefix), ("test", prefix + "-test")):
    s = json.load(open(path + ".validation.json"))
    print(f"{name:<7}{s['points']:>7}{s['mape']:>8.1f}{s['mean_error']:>+8.1f}"
          f"{s['max_error']:>8.1f}{s['rank_correlation']:>7.3f}  "
          f"{'; '.join(s['machine_mismatch']) or 'none'}")
EOF
rm -f "$P.validation.json" "$P-test.validation.json"
cat "$P-report.txt"
