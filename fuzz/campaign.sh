#!/usr/bin/env bash
# Run every fuzz target for SECONDS (default 300) one after the other, starting from the committed
# seeds; logs go to LOGS (default fuzz/logs). Crashes land in fuzz/artifacts/<target>/.
#   CARGO_TARGET_DIR=/work/fuzz-target fuzz/campaign.sh [target ...]
set -u
cd "$(dirname "$0")"
SECONDS_PER_TARGET=${SECONDS_PER_TARGET:-300}
LOGS=${LOGS:-logs}
mkdir -p "$LOGS"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(config_toml eval_features image_decode dataset_names clip_config caption_json mllm_answer clip_safetensors config_overrides checkpoint)
fi
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=3072 -max_len=65536 -timeout=20 \
    > "$LOGS/$t.log" 2>&1
  echo "$t exit $?" >> "$LOGS/summary.txt"
done
