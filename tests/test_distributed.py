"""The monitor and the report on a model wrapped in DistributedDataParallel: two processes on this
CPU (the gloo backend). Statistics are combined over ranks: a unit is dead only if it is dead on
every rank's data."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

ROOT = Path(__file__).resolve().parents[1]


def worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    sys.path.insert(0, str(ROOT))
    import helpers
    from helpers.monitor import Monitor

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)  # the same weights on both ranks, as DDP requires
        net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        with torch.no_grad():
            net[0].weight.copy_(torch.eye(3, 4))
            net[0].bias.zero_()
        # unit 0 fires only on rank 1's data, unit 1 only on rank 0's, unit 2 never (x[:, 2] < 0)
        x = torch.zeros(16, 4)
        x[:, 0 if rank == 1 else 1] = 1.0
        x[:, 2] = -1.0
        y = torch.zeros(16, dtype=torch.long)
        model = DistributedDataParallel(net)
        rep = helpers.report(model, (x, y), optimizer="sgd", lr=0.1)
        dead = float(rep.layers.set_index("layer").frac_dead["module.1"])
        with Monitor(model, every=1) as mon:
            nn.functional.cross_entropy(model(x), y).backward()
        frame = mon.to_frame()
        monitored = float(frame[(frame.layer == "module.1") & (frame.quantity == "frac_dead")].value.iloc[0])
        hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
        Path(out_dir, f"{rank}.json").write_text(json.dumps(
            {"report_dead": dead, "monitor_dead": monitored, "hooks": hooks, "problems": sorted(rep.problems)}))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available in this build")
def test_ddp_two_processes_gloo(tmp_path):
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    results = [json.loads((tmp_path / f"{r}.json").read_text()) for r in range(2)]
    for r in results:
        assert r["report_dead"] == pytest.approx(1 / 3)  # unit 2 only: each of units 0, 1 lives on one rank
        assert r["monitor_dead"] == pytest.approx(1 / 3)
        assert r["hooks"] == 0
    assert results[0]["problems"] == results[1]["problems"]  # both ranks reach the same verdict
