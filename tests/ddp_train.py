"""Entry for test_ddp.py: `python -m torch.distributed.run --nproc_per_node 2 tests/ddp_train.py SPEC OUT`.

Trains the teacher of a tiny run; train() sees WORLD_SIZE/RANK and uses DistributedDataParallel.
"""
import sys

from tinyagent.integer.config import TINY
from tinyagent.training.chain import train

# The same arguments as the single-process run test_ddp.py compares against.
ARGS = dict(steps=150, batch=16, until="teacher", ckpt_every=50, progress=False, n_train=500, n_val=100,
            n_heldout=100, teacher_cfg=TINY, student_cfg=TINY)

if __name__ == "__main__":
    train(sys.argv[1], sys.argv[2], **ARGS)
