"""STUB — being written (helper: search). Signature is the contract."""
def topk(queries, corpus, k, *, metric="cosine", block_size=None, tie_rank=None):
    raise NotImplementedError
