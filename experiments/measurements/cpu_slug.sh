#!/usr/bin/env bash
# Print this machine's CPU model as a file-name slug ("intel-xeon", "amd-epyc-7b13"): the
# middle of the measurement files' names that cpu_session.sh and fhe_session.sh write.
grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | tr 'A-Z' 'a-z' \
  | sed -E 's/\((r|tm)\)//g; s/ (processor|cpu)//g; s/[^a-z0-9]+/-/g; s/^-|-$//g'
