#!/bin/sh
# The pretraining run of weights/imdb-gpt2 (from the pretrain worktree; add --resume to continue;
# STEPS=5000 lengthened the schedule on 2026-12-02).
exec nice -n 19 node --import tsx src/cli/dev.ts pretrain --data ../shared/data/imdb/train.gz.parquet \
  --out /work/wt/pretrain-run/imdb-gpt2 --layers 4 --embd 128 --heads 4 --seq-len 128 \
  --batch-size 4 --steps ${STEPS:-900} --lr 3e-3 --min-lr 3e-4 --warmup 30 --save-every 4 "$@"
