#!/usr/bin/env bash
# Regenerate the committed deployment configs under deploy/ from the scenarios in workloads/.
#
# For every workloads/*.yaml scenario: solve it with --validate (the plan is simulated on the
# scenario's workload and re-solved at a lower target utilization while it misses the SLO;
# plan.json, report.md with the rounds, sim.json, latency_cdf.png) and emit its vLLM,
# Kubernetes, Dynamo and llm-d configs into deploy/<scenario>/{vllm,k8s,dynamo,llm-d}/. A fleet
# file (`members:`) is solved as one fleet: deploy/<fleet>/{fleet.json,fleet.md} and, per
# member, deploy/<fleet>/<member>/ with its plan and configs.
# Plans and configs are deterministic, so a committed deploy/ that differs from a fresh run
# is stale: a catalog, a workload or the planner changed and nobody regenerated.
#
#   scripts/regenerate_configs.sh           check: regenerate into a temp dir and diff against
#                                           deploy/; exit 1 with the diff when stale
#   scripts/regenerate_configs.sh --write   regenerate deploy/ in place (then commit it)
#
# Environment (for tests): HETPLAN_DEPLOY_DIR (default deploy), HETPLAN_SCENARIOS (a
# space-separated list of scenario files; default every workloads/*.yaml; when set, only
# those scenarios' folders are compared).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=check
case "${1:-}" in
  "") ;;
  --write) mode=write ;;
  -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--write]" >&2; exit 2 ;;
esac

deploy=${HETPLAN_DEPLOY_DIR:-deploy}
if [ -n "${HETPLAN_SCENARIOS:-}" ]; then
  read -r -a scenarios <<< "$HETPLAN_SCENARIOS"
  only_listed=1
else
  scenarios=(workloads/*.yaml)
  only_listed=0
fi
hetplan=(python3 -m hetplan.cli)
targets=(vllm k8s dynamo llm-d)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

n=${#scenarios[@]}
i=0
names=()
for scenario in "${scenarios[@]}"; do
  i=$((i + 1))
  name=$(basename "$scenario" .yaml)
  names+=("$name")
  out="$tmp/deploy/$name"
  if grep -q '^members:' "$scenario"; then
    # a fleet (hetplan/fleet): one plan per member under $out/<member>/ plus fleet.json and
    # fleet.md; --validate simulates each member's plan alone on its workload (sim.json) and
    # tops up the replica counts of a member that misses (hetplan/fleet/validate.py);
    # --emit llm-d writes each member's llm-d/ and the shared llm-d-gateway/; the other
    # targets are emitted beside each member's plan
    echo "[$i/$n] $name: fleet solve --validate, emit ${targets[*]} per member" >&2
    "${hetplan[@]}" solve "$scenario" --validate --emit llm-d --out "$out" >/dev/null
    # every target but llm-d in one `hetplan emit` per member: several --target write
    # <member>/<target>/ each
    rest=()
    for target in "${targets[@]}"; do
      [ "$target" = llm-d ] || rest+=("$target")
    done
    for plan in "$out"/*/plan.json; do
      "${hetplan[@]}" emit "$plan" "${rest[@]/#/--target=}" --out "$(dirname "$plan")" \
        >/dev/null
    done
    continue
  fi
  echo "[$i/$n] $name: solve --validate, emit ${targets[*]}" >&2
  "${hetplan[@]}" solve "$scenario" --validate --out "$out" >/dev/null
  # one process for every target (each into $out/<target>/): interpreter start and imports
  # cost more than the emits themselves
  "${hetplan[@]}" emit "$out/plan.json" "${targets[@]/#/--target=}" --out "$out" >/dev/null
done

if [ "$mode" = write ]; then
  if [ "$only_listed" = 1 ]; then
    for name in "${names[@]}"; do
      rm -rf "${deploy:?}/$name"
      mkdir -p "$deploy"
      mv "$tmp/deploy/$name" "$deploy/$name"
    done
  else
    rm -rf "$deploy"
    mv "$tmp/deploy" "$deploy"
  fi
  echo "$deploy/ regenerated for $n scenario(s)" >&2
  exit 0
fi

stale=0
for name in "${names[@]}"; do
  if [ ! -d "$deploy/$name" ]; then
    echo "missing: $deploy/$name (scenario workloads/$name.yaml has no committed configs)"
    stale=1
  elif ! diff -ruN "$deploy/$name" "$tmp/deploy/$name"; then
    stale=1
  fi
done
if [ "$only_listed" = 0 ] && [ -d "$deploy" ]; then
  for dir in "$deploy"/*/; do
    [ -d "$dir" ] || continue
    name=$(basename "$dir")
    if [ ! -d "$tmp/deploy/$name" ]; then
      echo "extra: $deploy/$name (no scenario workloads/$name.yaml)"
      stale=1
    fi
  done
fi
if [ "$stale" = 1 ]; then
  echo "$deploy/ is stale (diff above: committed -> regenerated)." >&2
  echo "Run scripts/regenerate_configs.sh --write and commit $deploy/." >&2
  exit 1
fi
echo "$deploy/ is up to date for $n scenario(s)" >&2
