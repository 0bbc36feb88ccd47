#!/usr/bin/env bash
# The MNIST evidence campaign (issue 28) in the order it runs. Every step resumes what
# it finds, so after any stop the same command goes on where it was. On a new machine
# each sweep first gets back the runs committed in results/<its folder> (python -m
# tf_gancond.results restore), so only the rest run; a run that was in progress on a
# lost machine starts again from step 0.
# Every run comes from one clean clone of the package at one commit ($MNIST_COMMIT,
# made once in $CAMPAIGN/code-<commit>), on the faithful stack, at low priority:
#
#   setsid bash results/campaign.sh > campaign.log 2>&1 &
#   # settings: CAMPAIGN=~/tf_gancond_campaign NICE=19 PY=.venv/bin/python
#   kill -- -PGID   # stops it: its lanes are processes of their own in its group
#
# On a SLURM cluster every sweep below is submitted as one job array instead (each
# `sweep` call returns once it is submitted; the same command again submits only what
# is neither finished nor queued; MNIST_COMMIT must then be a commit with
# --backend=slurm, and CAMPAIGN a folder on the shared file system):
#
#   BACKEND_FLAGS='--backend=slurm --partition=cpu --time=08:00:00 --cpus_per_task=2 --parallel=20' \
#     setsid bash results/campaign.sh > campaign.log 2>&1 &
#   # = python -m launch.run_sweep --backend=slurm ... --sweep_dir=$CAMPAIGN/PART <its flags>
#   python -m launch.run_sweep --backend=slurm --status --sweep_dir=$CAMPAIGN/mnist_stage1
#
# Under setsid the campaign is a session of its own and lowers that whole session to
# $NICE: where the kernel schedules by session first (sched_autogroup_enabled=1),
# the nice value of a process only counts against processes of its own session, so
# `nice -n 19` alone leaves the campaign half of the cores against a test run in
# another terminal.
#
# Then, for each sweep folder: python -m tf_gancond.results collect --sweep_dir=DIR,
# and python -m tf_gancond.results build.
# The Fashion-MNIST campaign that came before (results/phase*) ran from the commits
# its parts' sweep.json name; its phase 3 was stopped for this one (results/HEADER.md).
# The whole script is one block, read before it runs, so checking out another commit
# cannot change the script of a running campaign (restore and the classifier check
# run the package of the checkout they start from).
{
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
CAMPAIGN=${CAMPAIGN:-$HOME/tf_gancond_campaign}
NICE=${NICE:-19}
PY=${PY:-$REPO/.venv/bin/python}
BACKEND_FLAGS=${BACKEND_FLAGS:-}  # Empty: the local runner.
MNIST_COMMIT=174ab98

clone_at() {  # Prints the folder of a clean clone of this repository at commit $1.
  local dir=$CAMPAIGN/code-$1
  if [ ! -d "$dir" ]; then
    rm -rf "$dir.tmp"  # set -e does not reach inside $(...): each step is checked.
    git clone -q "$REPO" "$dir.tmp" && git -C "$dir.tmp" checkout -q "$1" &&
      mv "$dir.tmp" "$dir" || return 1
  fi
  echo "$dir"
}

restore() {  # restore PART: the runs of results/PART, committed already, are put back
  if [ -f "$REPO/results/$1/sweep.json" ]; then  # into $CAMPAIGN/PART (a new machine,
    PYTHONPATH=$REPO "$PY" -m tf_gancond.results restore --part="$REPO/results/$1" \
      --sweep_dir="$CAMPAIGN/$1"  # which it makes and locks); the runner skips them.
  fi
}

sweep() {  # sweep COMMIT PART RUN_SWEEP_FLAGS...: the sweep folder is $CAMPAIGN/PART.
  local code sweep_dir=$CAMPAIGN/$2
  code=$(clone_at "$1") || return 1  # Also where set -e is off (left of ||).
  shift 2
  # A run that failed or diverged ends the runner with exit 1 after the others ran:
  # the campaign goes on with the next part (a diverged run is a result: collect keeps
  # it; the same command again retries what did not finish) and exits 1 at its end.
  # Any other code (2: bad input, nothing run; 130: the runner interrupted) stops it.
  local code_of_sweep=0
  # $BACKEND_FLAGS unquoted: it holds several flags; after "$@", so its --parallel wins.
  (cd "$code" && PYTHONPATH=$code nice -n "$NICE" "$PY" -m launch.run_sweep \
     --progress_every=600 --sweep_dir="$sweep_dir" "$@" $BACKEND_FLAGS) ||
    code_of_sweep=$?
  if [ "$code_of_sweep" -eq 1 ]; then
    echo "[campaign] some run of $sweep_dir did not finish (its sweep_status.json);" \
      "going on"
    some_run_unfinished=1
  elif [ "$code_of_sweep" -ne 0 ]; then
    return "$code_of_sweep"
  fi
}
some_run_unfinished=0

# finished_here RUN: the run finished, and its checkpoints are on this machine (a run
# restored from its committed records has none).
finished_here() {
  grep -q '"state": "finished"' "$1/status.json" 2>/dev/null && [ -d "$1/checkpoints" ]
}

mkdir -p "$CAMPAIGN"
if [ "$(ps -o sid= -p $$ | tr -d ' ')" = "$$" ] && [ -w /proc/self/autogroup ]; then
  echo "$NICE" > /proc/self/autogroup  # bash's own /proc/self: this session's group.
fi
# Every score (classifier score, Frechet distance on the logits, KID) is made by the
# MNIST classifier committed in results/classifier_mnist (99.34 % test accuracy), so a
# new machine scores with the same one: it is installed where the runs look for it,
# and a different classifier already there stops the campaign (exit 2). MNIST itself
# comes from the package registry, byte-verified (tf_gancond/offline_mnist.py), and
# TFDS builds it once here, before runs start two at a time.
PYTHONPATH=$REPO "$PY" -m tf_gancond.classifier --dataset=mnist \
  --install_from="$REPO/results/classifier_mnist"
PYTHONPATH=$REPO "$PY" -m tf_gancond.offline_mnist
PYTHONPATH=$REPO "$PY" -c 'from tf_gancond import data; data.load_builder("mnist")'

# The settings of every 5,000-step part: probes every 250 steps, the final log-cond
# over 512 z (the probe batch's 64 first), classifier score and FD every 2,500 steps
# and at the end, all on 10,000 samples, so that every part's scores compare.
SHORT=train_steps=5000,checkpoint_every=250,eval_every=2500,eval_num_samples=10000,final_eval_num_samples=10000,export_every=2500,final_probe_num_z=512

# Stage 1 (O1, O2, O4, O5): 10 seeds x {baseline, JC(lambda_max 20, lambda_min 1,
# epsilon 1)} x 5,000 steps, two at a time with one thread each. The baselines also
# export G at epochs 1, 10 and 25 (steps 938, 9,375, 23,440) for A1/A2; the last
# two come with stage 2.
restore mnist_stage1
sweep "$MNIST_COMMIT" mnist_stage1 --sweep=odena_jc_mnist --num_seeds=10 --parallel=2 \
  --setting_extra=baseline:export_at_steps=938,9375,23440 --extra="$SHORT"

# The batch-statistics probes, the last choice of that table (no new training): each
# stage-1 G at its step-5,000 checkpoint, on its own probe batch (64 z), with
# BatchNorm on its moving averages and on that batch's own statistics, both made by
# $PROBE_COMMIT, since $MNIST_COMMIT has no `probe --run_dir` (its inference probe
# equals the run's own probe record at that step), into $CAMPAIGN/mnist_batch_stats/;
# commit
# them with `cp $CAMPAIGN/mnist_batch_stats/*.json results/mnist_batch_stats/` and a
# build. Where a sweep went to SLURM, its runs are not finished here yet and wait for
# the same command again.
PROBE_COMMIT=7279529
mkdir -p "$CAMPAIGN/mnist_batch_stats"
probe_code=$(clone_at "$PROBE_COMMIT")
for run in "$CAMPAIGN"/mnist_stage1/*_seed*; do
  finished_here "$run" || continue  # A restored run was probed on its own machine.
  for mode in inference batch_stats; do
    out=$CAMPAIGN/mnist_batch_stats/$(basename "$run").$mode.json
    [ -e "$out" ] || (cd "$probe_code" && PYTHONPATH=$probe_code nice -n "$NICE" \
      "$PY" -m tf_gancond.probe --run_dir="$run" --step=5000 --bn_mode="$mode" \
      --output="$out") || echo "probe failed: $run $mode"
  done
done

# bf16 against float32 (issue 31, docs/experiments.md#bf16): the 10 stage-1 baselines
# again with precision=bfloat16, from $BF16_COMMIT, the first commit with the setting;
# its float32 path reproduces $MNIST_COMMIT's records exactly (results/PROVENANCE.md),
# so each run pairs with its stage-1 twin.
BF16_COMMIT=c18de4c
restore mnist_bf16
sweep "$BF16_COMMIT" mnist_bf16 --sweep=o2_mnist --num_seeds=10 --parallel=2 \
  --extra="$SHORT,precision=bfloat16"

# The unstated choices, one at a time against the stage-1 baselines of seeds 0 and 1:
# Radford's batch 128 and n_z 100, a generator of twice the channels, and two G
# updates per iteration (DCGAN-tensorflow's count; the second on fresh z, where it
# reuses the iteration's z).
for choice in batch_size=128 latent_dim=100 g_base_channels=512 g_steps=2; do
  part=mnist_choice_${choice%%=*}
  restore "$part"
  sweep "$MNIST_COMMIT" "$part" --sweep=o2_mnist --num_seeds=2 --parallel=2 \
    --extra="$SHORT,$choice"
done

# Stage 2: the 20 stage-1 runs extended to 23,440 steps (25 epochs), in a folder of
# their own. Each starts as a copy of its stage-1 folder and resumes from its step-5,000
# checkpoint exactly as a run never stopped would go on; a stage-1 run restored from
# its records alone (a new machine: no checkpoint) starts again from step 0.
restore mnist_stage2
mkdir -p "$CAMPAIGN/mnist_stage2"
for run in "$CAMPAIGN"/mnist_stage1/*_seed*; do
  if finished_here "$run" && [ ! -e "$CAMPAIGN/mnist_stage2/$(basename "$run")" ]; then
    cp -a "$run" "$CAMPAIGN/mnist_stage2/"
  fi
done
sweep "$MNIST_COMMIT" mnist_stage2 --sweep=odena_jc_mnist --num_seeds=10 --parallel=2 \
  --setting_extra=baseline:export_at_steps=938,9375,23440 \
  --extra="${SHORT/train_steps=5000/train_steps=23440}"
exit "$some_run_unfinished"
}
