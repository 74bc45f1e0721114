"""Cells: past one Redis. A cell is one Redis (or Sentinel group) with the workers that serve
it; every status of one message is handled in the cell its (target, first message id) hashes
to (`worker.cells.router`), so the ledger's order rule and dedup stay single-Redis."""
