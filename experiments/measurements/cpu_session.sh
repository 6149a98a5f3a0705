#!/usr/bin/env bash
# Ground the CPU model on this machine: calibrate a preset from microbenchmarks, measure the
# design set (validation_cpu.yaml) and the test set (validation_cpu_test.yaml), and validate
# both, reported separately. Run from the repository root with embsim installed:
#   bash experiments/measurements/cpu_session.sh [NAME]
# NAME defaults to cpu-<cpu model>-<date>; ROUNDS (default 3) is how many rounds; DIR (default
# experiments/measurements) is where the files go:
#   NAME-lscpu.txt          the machine
#   NAME-preset.yaml        the calibrated preset (every value with the microbenchmark behind it)
#   NAME.parquet            design-set measurements; NAME-test.parquet the test set's
#   NAME.validation.parquet, NAME-test.validation.parquet, NAME-validation.png,
#   NAME-test-validation.png   the comparisons
#   NAME-report.txt         both sets' MAPE, mean signed error, max error and rank correlation,
#                           and the test set's bias less the design set's (session_report.py)
#   NAME-rounds/            each round's preset and measurements, before pooling
# The rounds are interleaved: each runs the microbenchmarks, then the design set, then the test
# set, once; the rounds are then pooled, each run and point by its fastest round (calibrate
# --refit, measure --pool). A VM's speed drifts by tens of percent over minutes and other
# tenants slow it in bursts (docs/grounding.md): interleaving makes the preset and both sets
# sample the same stretch of time, and the fastest round leaves the bursts out. The report
# gives each set's spread between its slowest and fastest rounds: how noisy the machine was.
set -euo pipefail
ROUNDS=${ROUNDS:-3}
DIR=${DIR:-experiments/measurements}
EMBSIM=${EMBSIM:-embsim}
model=$(bash "$(dirname "$0")/cpu_slug.sh" || true)
NAME=${1:-cpu-${model:-unknown}-$(date -u +%F)}
P="$DIR/$NAME"
DESIGN=experiments/validation_cpu.yaml
TEST=experiments/validation_cpu_test.yaml
mkdir -p "$DIR"
ROUND_DIR="$P-rounds"
mkdir -p "$ROUND_DIR"
lscpu > "$P-lscpu.txt"
presets=() designs=() tests=()
for r in $(seq 1 "$ROUNDS"); do
  R="$ROUND_DIR/$r"
  echo "[$NAME] round $r/$ROUNDS: calibrate, measure the design set ($DESIGN), the test set ($TEST)"
  "$EMBSIM" calibrate --backend torch-cpu --rounds 1 -o "$R-preset.yaml" > /dev/null
  "$EMBSIM" measure "$DESIGN" --backend torch-cpu --no-flush -o "$R.parquet" > /dev/null
  "$EMBSIM" measure "$TEST" --backend torch-cpu --no-flush -o "$R-test.parquet" > /dev/null
  presets+=(--refit "$R-preset.yaml") designs+=(--pool "$R.parquet")
  tests+=(--pool "$R-test.parquet")
done
"$EMBSIM" calibrate "${presets[@]}" -o "$P-preset.yaml"
"$EMBSIM" measure "$DESIGN" "${designs[@]}" -o "$P.parquet" | tee "$ROUND_DIR/spread.txt"
"$EMBSIM" measure "$TEST" "${tests[@]}" -o "$P-test.parquet" | tee -a "$ROUND_DIR/spread.txt"
for set in design test; do
  if [ $set = design ]; then exp=$DESIGN; out=$P; else exp=$TEST; out=$P-test; fi
  echo "[$NAME] validate the $set set"
  "$EMBSIM" validate "$exp" --measurements "$out.parquet" --preset "$P-preset.yaml" \
    --plot "$out-validation.png" --json > "$out.validation.json"
done
python3 "$(dirname "$0")/session_report.py" "$P" > "$P-report.txt"
sed 's/^wrote /rounds of /' "$ROUND_DIR/spread.txt" >> "$P-report.txt"
rm -f "$P.validation.json" "$P-test.validation.json" "$ROUND_DIR/spread.txt"
cat "$P-report.txt"
