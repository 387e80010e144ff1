#!/bin/bash
# Runs every configuration of induction_sweep.py at once on one GPU; WALL seconds each; summary on stdout, all.jsonl in $OUT.
WALL=${1:-420}
nvidia-smi -L; python3 -c "import torch; print(torch.__version__, torch.cuda.is_available())"
D=/tmp/sweep; mkdir -p $D
for c in $(python3 induction_sweep.py); do OUT=$D PYTHONUNBUFFERED=1 python3 induction_sweep.py $c $WALL > $D/$c.log 2>&1 & done
wait
cat $D/*.jsonl > $OUT/all.jsonl; tail -n 5 $D/*.log > $OUT/logs.txt
python3 - <<'PY'
import json, glob, os
for f in sorted(glob.glob('/tmp/sweep/*.jsonl')):
    rs = [json.loads(l) for l in open(f)]
    if not rs: print(os.path.basename(f), 'no records'); continue
    last = rs[-1]; n = os.path.basename(f)[:-6]
    fa = next((r['step'] for r in rs if r['alpha']['ind'][2] >= 0.5), None); ff = next((r['step'] for r in rs if r['full']['ind'][2] >= 0.5), None)
    print(f"{n:15s} {last['step']:5d} loss {last['loss']:.2f} A {last['alpha']} F {last['full']} first ind>=.5 A@{fa} F@{ff} {last['sec']}s")
PY
grep -l -i "error\|Traceback" $D/*.log && grep -h -A3 -i "Traceback" $D/*.log | head -40
