# Dumps torch.distributed.pipelining's own per-rank op orders for the schedules Explorer simulates, as a test fixture.
import json, os, types, torch
from torch.distributed.pipelining import schedules as S
out = {"torch": torch.__version__, "orders": [], "errors": []}
def flat(actions):
    res = []
    for a in actions:
        if a is None: continue
        subs = getattr(a, "sub_actions", None)
        res.extend(str(x) for x in subs) if subs else res.append(str(a))
    return res
def dump(name, cls, p, m, v, **attrs):
    try:
        fake = types.SimpleNamespace(pp_group_size=p, _n_microbatches=m, **attrs)
        out["orders"].append({"schedule": name, "p": p, "m": m, "v": v,
                              "ranks": [flat(cls._calculate_single_rank_operations(fake, r)) for r in range(p)]})
    except Exception as e:
        out["errors"].append(f"{name} p={p} m={m} v={v}: {type(e).__name__}: {e}")
for p, m in [(2, 4), (4, 8), (4, 16), (3, 7)]:
    dump("zbv", getattr(S, "ScheduleZBVZeroBubble", None), p, m, 2, num_stages=2 * p, n_local_stages=2)
for p, m in [(2, 4), (4, 8), (4, 12)]:
    dump("dualpipev", getattr(S, "ScheduleDualPipeV", None), p, m, 2, num_stages=2 * p, n_local_stages=2, _num_stages=2 * p)
for p, m, v in [(4, 8, 2), (2, 6, 3), (4, 10, 2), (4, 4, 1)]:
    rounds = max(1, m // p)
    dump("interleaved-zb", S.ScheduleInterleavedZeroBubble, p, m, v, n_local_stages=v, number_of_rounds=rounds, microbatches_per_round=m // rounds)
out["names"] = {n: getattr(S.get_schedule_class(n), "__name__", None) for n in ["ZBVZeroBubble", "InterleavedZeroBubble", "DualPipeV", "Interleaved1F1B", "1F1B", "GPipe"]}
import inspect
out["source_head"] = inspect.getsource(S)[:0]
json.dump(out, open(os.path.join(os.environ.get("OUT", "."), "torch_orders.json"), "w"), indent=1)
print(out["torch"], out["errors"], out["names"])
