"""A colocated replica: chunked prefill (Sarathi-style) mixed into continuous decode steps.

Each step carries one token per running sequence plus up to max(token_budget - batch,
min_chunk) prompt tokens, taken in arrival order from the prompts being prefilled (a prompt
may span several steps). A prompt reserves KV for all its tokens when its prefill starts; it
produces its first token at the end of the step that finishes its prefill, then decodes the
rest. Preempted sequences recompute their prompt and generated tokens the same way.
"""

from __future__ import annotations

from hetplan.simulate.replicas import DecodeReplica


class ColocatedReplica(DecodeReplica):
    __slots__ = ("prefilling", "reserved", "token_budget", "min_chunk", "chunks")

    def __init__(self, sim, pool, steps, max_seqs: int, kv_tokens: int, token_budget: int,
                 min_chunk: int):
        super().__init__(sim, pool, steps, max_seqs, kv_tokens)
        self.prefilling: list[list[int]] = []     # [rid, tokens done, tokens to do]
        self.reserved = 0
        self.token_budget, self.min_chunk = token_budget, min_chunk
        self.chunks: list[tuple[list[int], int]] = []

    def enqueue(self, now: float, rid: int) -> None:
        self.waiting.append(rid)
        self.load += 1
        if not self.busy:
            self.next_step(now)

    def after_step(self, now: float) -> None:
        """Advance the step's prompt chunks; finished prompts yield their first token."""
        if not self.chunks:
            return
        finished = False
        for entry, c in self.chunks:
            entry[1] += c
            finished |= entry[1] >= entry[2]
        self.chunks = []
        if not finished:
            return
        sim, k = self.sim, self.k
        inp, gen, out, fin, t_first = sim.inp, sim.gen, sim.out, sim.fin, sim.t_first
        keep = []
        for entry in self.prefilling:
            rid, done, todo = entry
            if done < todo:
                keep.append(entry)
                continue
            self.reserved -= todo + 1
            if t_first[rid] < 0:
                t_first[rid] = now
            if gen[rid] == 0:
                gen[rid] = 1
            if gen[rid] >= out[rid]:
                sim.t_done[rid] = now
                self.load -= 1
                continue
            self.running[rid] = k
            self.H += inp[rid] + gen[rid] - k
            f = fin[rid] = k + out[rid] - gen[rid]
            lst = self.fin_at.get(f)
            if lst is None:
                self.fin_at[f] = [rid]
            else:
                lst.append(rid)
        self.prefilling = keep

    def next_step(self, now: float) -> None:
        sim, running, k, cap = self.sim, self.running, self.k, self.kv_tokens
        B = len(running)
        while B and self.H + B * k + B + self.reserved > cap:
            if B == 1 and not self.reserved:
                rid = next(iter(running))
                s = running.pop(rid)
                self.H -= sim.inp[rid] + sim.gen[rid] - s
                self._drop(now, rid)
            else:
                self._preempt_last()
            B -= 1
        budget = max(self.token_budget - B, self.min_chunk)
        steps = self.steps
        chunks = []
        new, att, kvl = B, 0.0, 0.0
        for entry in self.prefilling:
            if budget <= 0:
                break
            c = min(entry[2] - entry[1], budget)
            budget -= c
            chunks.append((entry, c))
        w, inp, gen = self.waiting, sim.inp, sim.gen
        while budget > 0 and w and B + len(self.prefilling) < self.max_seqs:
            rid = w[0]
            todo = inp[rid] + gen[rid]
            if self.H + B * k + B + self.reserved + todo + 1 > cap:
                if B == 0 and not self.prefilling:
                    w.popleft()
                    self._drop(now, rid)
                    continue
                break
            w.popleft()
            if sim.t_start[rid] < 0:
                sim.t_start[rid] = now
            entry = [rid, 0, todo]
            self.prefilling.append(entry)
            self.reserved += todo + 1
            c = min(todo, budget)
            budget -= c
            chunks.append((entry, c))
        for entry, c in chunks:
            new += c
            att += steps.prefill_keys(c, entry[1])
            kvl += steps.kv_layer_tokens(c + entry[1])
        self.chunks = chunks
        if B == 0 and not chunks:
            self.busy = False
            return
        if B:
            per = steps.kv_layer_tokens((self.H + B * k) / B) * B
        else:
            per = 0.0
        dt = steps.step_s(new, B + len(chunks), per + att, per + kvl)
        self.busy, self.t0 = True, now
        sim.push(now + dt, self, -1)
