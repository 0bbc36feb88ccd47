#!/usr/bin/env bash
# The evidence campaign (issue 12) in the order it runs: phase 2 (both halves), then
# phase 1, then phase 3. Every step resumes what it finds, so after any
# stop the same command goes on where it was. On a new machine each sweep first gets
# back the runs committed in results/<its folder> (python -m tf_gancond.results
# restore), so only the rest run; a run that was in progress on a lost machine
# starts again from step 0.
# Each phase runs from a clean clone of the package at a fixed commit
# ($CAMPAIGN/code-<commit>, made once), on the faithful stack, at low priority:
#
#   setsid bash results/campaign.sh > campaign.log 2>&1 &
#   # settings: CAMPAIGN=~/tf_gancond_campaign NICE=19 PY=.venv/bin/python
#   kill -- -PGID   # stops it: its lanes are processes of their own in its group
#
# Under setsid the campaign is a session of its own and lowers that whole session to
# $NICE: where the kernel schedules by session first (sched_autogroup_enabled=1),
# the nice value of a process only counts against processes of its own session, so
# `nice -n 19` alone leaves the campaign half of the cores against a test run in
# another terminal (seen here: the README main job ran at half speed beside it).
#
# Then, for each sweep folder: python -m tf_gancond.results collect --sweep_dir=DIR,
# and python -m tf_gancond.results build.
# The whole script is one block, read before it runs, so checking out another commit
# cannot change the script of a running campaign (restore and the classifier check
# run the package of the checkout they start from).
{
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
CAMPAIGN=${CAMPAIGN:-$HOME/tf_gancond_campaign}
NICE=${NICE:-19}
PY=${PY:-$REPO/.venv/bin/python}
PHASE2_COMMIT=83ee654
PHASE1_COMMIT=f38058d
PHASE3_COMMIT=ee4e93d

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

all_committed() {  # all_committed FILE...: each results/FILE (a progress.json) says
                  # every run of its part is committed finished
  "$PY" -c 'import json, sys
try:
  parts = [json.load(open(p)) for p in sys.argv[1:]]
except (OSError, ValueError):  # Not committed yet, or cut.
  sys.exit(1)
sys.exit(0 if all(p and all(r.get("state") == "finished" for r in p.values())
                  for p in parts) else 1)' "${@/#/$REPO/results/}"
}

sweep() {  # sweep COMMIT PART RUN_SWEEP_FLAGS...: the sweep folder is $CAMPAIGN/PART.
  local code sweep_dir=$CAMPAIGN/$2
  code=$(clone_at "$1") || return 1  # Also where set -e is off (left of ||).
  shift 2
  (cd "$code" && PYTHONPATH=$code nice -n "$NICE" "$PY" -m launch.run_sweep \
     --progress_every=600 --sweep_dir="$sweep_dir" "$@")
}

mkdir -p "$CAMPAIGN"
if [ "$(ps -o sid= -p $$ | tr -d ' ')" = "$$" ] && [ -w /proc/self/autogroup ]; then
  echo "$NICE" > /proc/self/autogroup  # bash's own /proc/self: this session's group.
fi
# Every score (classifier score, Frechet distance, KID) is made by the Fashion-MNIST
# classifier committed in results/classifier_fashion_mnist (92.3 % test accuracy), so a
# new machine scores with the same one: it is installed where the runs look for it, and
# a different classifier already there stops the campaign (exit 2).
PYTHONPATH=$REPO "$PY" -m tf_gancond.classifier \
  --install_from="$REPO/results/classifier_fashion_mnist"
# The dataset is built once, before runs start two at a time (the package at the
# phase commits lets two runs race to build it).
PYTHONPATH=$REPO "$PY" -c 'from tf_gancond import data; data.load_builder("fashion_mnist")'

# Phase 2 (O2/O4/O5): 10 seeds x {baseline, JC(1, 20)} x 5,000 steps. Two at a time
# with one thread each do about a fifth more in all than one at a time with both
# threads (results/HEADER.md).
restore phase2_odena_jc
sweep "$PHASE2_COMMIT" phase2_odena_jc --sweep=odena_jc_fashion_mnist --num_seeds=10 \
  --parallel=2 \
  --extra=train_steps=5000,checkpoint_every=250,eval_every=2500,eval_num_samples=10000,final_eval_num_samples=10000,export_every=2500

# Phase 2, second half (Odena et al. Sec. 5): lambda_min / lambda_max from Q of the
# good baseline runs (propose_lambda), then 10 seeds of JC with them beside the same
# baselines, reused: their folders are linked, and the runner skips finished runs.
q_dir=$CAMPAIGN/phase2_jc_lambda_from_q
mkdir -p "$q_dir"
for run in "$CAMPAIGN"/phase2_odena_jc/baseline_seed*; do
  ln -sfn "$run" "$q_dir/$(basename "$run")"
done
restore phase2_jc_lambda_from_q  # Its JC runs; the baselines are the links above.
proposal=$(cd "$(clone_at "$PHASE1_COMMIT")" && PYTHONPATH=$PWD "$PY" -m \
  tf_gancond.propose_lambda --run_dirs="$(ls -d "$q_dir"/baseline_seed* | paste -sd,)" \
  | tail -1)  # "--jc_lambda_min=A --jc_lambda_max=B"
lambda_min=$(sed -n 's/.*--jc_lambda_min=\([^ ]*\).*/\1/p' <<< "$proposal")
lambda_max=$(sed -n 's/.*--jc_lambda_max=\([^ ]*\).*/\1/p' <<< "$proposal")
sweep "$PHASE1_COMMIT" phase2_jc_lambda_from_q --sweep=odena_jc_fashion_mnist \
  --num_seeds=10 --parallel=2 \
  --setting_extra=jacobian_clamping:jc_lambda_min="$lambda_min",jc_lambda_max="$lambda_max" \
  --extra=train_steps=5000,checkpoint_every=250,eval_every=2500,eval_num_samples=10000,final_eval_num_samples=10000,export_every=2500

# Phase 1. O1: one full-length run (23,440 steps), probes every 250 steps, G exported
# at epochs 1, 10 and 25.
# Its generators feed A1/A2 and are not committed (only records are): O1 and A1/A2 are
# put back only once every A1/A2 run is committed; else all run again, so every A1/A2
# run faces generators of one O1 run. The --extra below names generators by $CAMPAIGN:
# keep its path (the default) on a new machine, or the runner refuses the restored runs.
if all_committed phase1_a1_a2_g{938,9375,23440}/progress.json; then
  for part in phase1_o1 phase1_a1_a2_g938 phase1_a1_a2_g9375 phase1_a1_a2_g23440; do
    restore "$part"
  done
fi
# Two lanes of one thread each, as two runs at a time do more than one with both
# threads. One lane: O1, then A1/A2 (a fresh D for 4,000 iterations against each of
# O1's generators, with and without instance noise). The other: O3. Then O7, two runs
# at a time, and last phase 3, two at a time.
restore phase1_o7
restore phase1_o3
restore phase3_full_length
lane_status=0
(export TF_NUM_INTRAOP_THREADS=1  # The runner gives each run this many threads.
 sweep "$PHASE1_COMMIT" phase1_o1 --sweep=o1_mnist_conditioning --num_seeds=1 \
   --parallel=1 --extra=dataset=fashion_mnist,export_at_steps=938,9375,23440,checkpoint_every=250
 for step in 938 9375 23440; do
   sweep "$PHASE1_COMMIT" "phase1_a1_a2_g$step" --sweep=a1_a2_frozen_generator \
     --num_seeds=1 --parallel=1 \
     --extra=dataset=fashion_mnist,generator_saved_model="$CAMPAIGN/phase1_o1/baseline_seed0/saved_models/step_$(printf %08d "$step")"
 done
) &
o1_lane=$!
# O3: 3 VAEs beside 3 GANs with the same decoder, 5,000 steps as phase 2, at the
# commit of phase 3 (exact resume, Q on 5 batches).
TF_NUM_INTRAOP_THREADS=1 sweep "$PHASE3_COMMIT" phase1_o3 --sweep=o3_gan_vs_vae \
  --num_seeds=3 --parallel=1 --extra=dataset=fashion_mnist,train_steps=5000 || lane_status=$?
wait "$o1_lane"  # Under set -e a failed lane of O1 and A1/A2 stops it here.
[ "$lane_status" = 0 ] || exit "$lane_status"

# O7: 3 memorizing generators, CS and FD at memorized and at random z. (At two runs
# at a time the runner gives each one thread.)
sweep "$PHASE1_COMMIT" phase1_o7 --sweep=o7_memorizing_generator --num_seeds=3 \
  --parallel=2 --extra=dataset=fashion_mnist

# Phase 3: phase 2's second half (the ten baselines and the ten JC(lambda from Q)
# runs) at the full O1 length, 23,440 steps (25 epochs), in a folder of its own.
# Each run starts at step 0 with its phase-2 seed, at a commit whose training is the
# same bit for bit (150-step runs on Fashion-MNIST, the baseline at $PHASE2_COMMIT
# and $PHASE3_COMMIT, JC(1.34, 7.06) at $PHASE1_COMMIT and $PHASE3_COMMIT: every
# loss and probe value equal), and whose resume is exact (a JC run stopped at step
# 100 and resumed to 150 recorded every value of the run made in one go), so the
# stops at each session's end change nothing. Its first 5,000 steps should re-make
# the phase-2 run where that one did not resume before step 5,000 (the phase-2
# commits reseeded the data on a resume; and without --deterministic the kernels
# promise nothing: its probe at step 5,000 shows how close).
# That commit measures Q on 5 batches in every setting, from a stream keyed by the
# step, and reads the final log-cond over 512 z (the probe batch's 64 first), a
# standard error about a third of the 64-z one (phase2_odena_jc/NOTES.md).
sweep "$PHASE3_COMMIT" phase3_full_length --sweep=odena_jc_fashion_mnist \
  --num_seeds=10 --parallel=2 \
  --setting_extra=jacobian_clamping:jc_lambda_min="$lambda_min",jc_lambda_max="$lambda_max" \
  --extra=train_steps=23440,checkpoint_every=250,eval_every=2500,eval_num_samples=10000,final_eval_num_samples=10000,export_every=2500,final_probe_num_z=512
exit
}
