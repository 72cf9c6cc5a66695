"""The engine: a vLLM-v1-like continuous-batching scheduler over a paged KV cache.

Each iteration (`begin_step` then `finish_step`):
1. running decodes each get one token slot; if the KV cache cannot hold the new blocks,
   a running request is preempted (recompute: blocks freed, back to the waiting queue)
   until it can: the newest under the `fcfs` policy, the one with the largest
   (priority, arrival) under the `priority` policy, as vLLM's scheduler picks;
2. partially prefilled running requests get prefill chunks from the token budget
   (max_num_batched_tokens), preempting the same way on block shortage;
3. if nothing was preempted, waiting requests are admitted in queue order (FCFS, or by
   (priority, arrival), see waiting.py) while there is budget, a
   free slot (max_num_seqs), KV blocks for their first chunk (after prefix-cache hits) and,
   for LoRA requests, room among the max_loras adapters of the batch (else they wait).
The iteration lasts the profile's step time; when it ends, each decode and each completed
prefill produce one token.

The engine is clock-free: drivers (real-time asyncio, or the virtual-time fleet) give it the
time. Per-iteration cost is O(prefilling + admitted + finished requests), not O(running):
decode progress and KV growth are derived from the step counter (see Sequence).
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from itertools import count
from typing import Any

import xxhash

from inference_gateway.simulator.config import EngineConfig
from inference_gateway.simulator.encoder import EncoderCache, MediaSpan
from inference_gateway.simulator.kv_cache import BlockPool
from inference_gateway.simulator.kv_events import KVEventLog
from inference_gateway.simulator.lora import LoraManager
from inference_gateway.simulator.profile import ModelProfile
from inference_gateway.simulator.sequence import Sequence, Status, StepOutcome, StepPlan
from inference_gateway.simulator.stats import EngineStats
from inference_gateway.simulator.waiting import waiting_queue


class Engine:
    def __init__(self, config: EngineConfig, profile: ModelProfile) -> None:
        self.cfg = config
        self.profile = profile
        self.pool = BlockPool(config.num_gpu_blocks)
        self.kv_events: KVEventLog | None = None
        self.lora = LoraManager(config.max_loras, config.max_cpu_loras)
        self.encoder = EncoderCache(config.max_num_batched_tokens)
        self.stats = EngineStats()
        self.step_no = 0
        self.waiting = waiting_queue(config.scheduling_policy)
        self._by_priority = config.scheduling_policy == "priority"
        self.num_waiting = 0
        self.running: dict[int, Sequence] = {}  # admission order; the last is the newest
        self._prefilling: dict[int, Sequence] = {}
        self._uids = count()
        bs = config.block_size
        self._residue = [0] * bs  # decoding sequences by (p_eff - s0 - 1) mod block_size
        self._num_decode = 0
        self._decode_base = 0  # sum of (p_eff - s0) over decoding sequences
        self._alloc_step = 0  # decode KV slots are allocated through this step
        self._finish_at: dict[int, list[Sequence]] = {}
        self._plan: StepPlan | None = None
        self._last_end = 0.0

    # ---- requests -------------------------------------------------------------------
    def add_request(
        self,
        request_id: Any,
        prompt_len: int,
        max_output: int,
        now: float,
        *,
        lora: str | None = None,
        block_hashes: Seq[int] = (),
        finish_reason: str = "length",
        payload: Any = None,
        kv_transferred: int = 0,
        priority: int = 0,
        token_ids: Seq[int] | None = None,
        media: Seq[MediaSpan] = (),
    ) -> Sequence:
        """Queue a request. block_hashes: chain hashes of its shareable leading full blocks.

        kv_transferred: leading prompt tokens whose KV arrived from a prefill pod (P/D
        disaggregation); they are not computed here. At most prompt_len - 1: as in vLLM,
        the decode side computes the last prompt token to produce the first output token.
        priority: vLLM's request priority (lower runs first); like vLLM, only the `priority`
        policy accepts a non-zero value.
        """
        if priority != 0 and not self._by_priority:
            raise ValueError(f"Got priority {priority} but Priority scheduling is not enabled.")
        if prompt_len < 1 or max_output < 1:
            raise ValueError("prompt and output must each have at least one token")
        if not 0 <= kv_transferred < prompt_len:
            raise ValueError("kv_transferred must be in [0, prompt_len)")
        if prompt_len + max_output > self.cfg.max_model_len:
            raise ValueError(f"{prompt_len} + {max_output} tokens exceed max_model_len")
        hashes = self._cache_hashes(block_hashes, lora)
        seq = Sequence(
            next(self._uids),
            request_id,
            now,
            prompt_len,
            max_output,
            lora,
            hashes,
            finish_reason,
            payload,
            priority,
        )
        seq.kv_transferred = kv_transferred
        if self.kv_events is not None:
            seq.token_ids = token_ids
        seq.media = tuple(media)
        self.waiting.add(seq)
        self.num_waiting += 1
        if lora is not None:
            self.lora.add_waiting(lora)
        return seq

    def _cache_hashes(self, block_hashes: Seq[int], lora: str | None) -> list[int]:
        if not (self.cfg.enable_prefix_caching and block_hashes):
            return []
        hashes = list(block_hashes)
        # Adapters never share KV with the base model or each other; vLLM-exact hashes
        # (used when KV events are published) already carry the adapter's name.
        if lora is not None and self.kv_events is None:
            salt = xxhash.xxh3_64_intdigest(lora.encode())
            hashes = [h ^ salt for h in hashes]
        return hashes

    def cached_blocks(self, block_hashes: Seq[int], lora: str | None = None) -> int:
        """Leading blocks of a prompt (hashed as for add_request) this engine's cache holds now."""
        hashes = self._cache_hashes(block_hashes, lora)
        return self.pool.lookup(hashes, len(hashes))[0] if hashes else 0

    def abort(self, seq: Sequence) -> None:
        if seq.status == Status.WAITING:
            self.num_waiting -= 1
            if seq.lora is not None:
                self.lora.remove_waiting(seq.lora)
        elif seq.status in (Status.PREFILL, Status.DECODE):
            seq.out_before = self.tokens_generated(seq)
            self._release(seq)
            del self.running[seq.uid]
        else:
            return
        seq.status = Status.ABORTED
        self.stats.finished["abort"] += 1

    def tokens_generated(self, seq: Sequence) -> int:
        if seq.status == Status.DECODE:
            return seq.out_before + 1 + self.step_no - seq.s0
        return seq.out_before

    def publish_kv_events(self, log: KVEventLog) -> None:
        """Record KV-cache events from now on (the caller sends them, see kv_events.py)."""
        self.kv_events = log
        self.pool.on_evict = log.removed

    def has_work(self) -> bool:
        return self.num_waiting > 0 or bool(self.running)

    @property
    def busy(self) -> bool:
        return self._plan is not None

    # ---- one iteration --------------------------------------------------------------
    def begin_step(self, now: float) -> StepPlan | None:
        """Schedule the next iteration starting at `now`; None if there is nothing to run."""
        s = self.step_no + 1
        bs = self.cfg.block_size
        preempted = False
        while self._residue[-s % bs] > self.pool.num_free:
            self._preempt_one()
            preempted = True
        self.pool.allocate(self._residue[-s % bs])
        self._alloc_step = s
        budget = self.cfg.max_num_batched_tokens - self._num_decode
        chunks: list[tuple[Sequence, int]] = []
        for seq in list(self._prefilling.values()):
            if budget <= 0:
                break
            if seq.status != Status.PREFILL:
                continue
            n = min(seq.num_tokens - seq.computed, budget)
            extra = -(-(seq.computed + n) // bs) - seq.nblocks
            while extra > self.pool.num_free and seq.status == Status.PREFILL:
                self._preempt_one()
                preempted = True
            if seq.status != Status.PREFILL:
                break
            self._grow(seq, n, extra)
            chunks.append((seq, n))
            budget -= n
        load_ms = 0.0
        if not preempted or not self.running:
            load_ms = self._admit(budget, chunks, now)
        return self._make_plan(s, now, chunks, load_ms)

    def finish_step(self) -> StepOutcome:
        """Complete the iteration begun last: every scheduled request advances."""
        plan = self._plan
        if plan is None:
            raise RuntimeError("finish_step() without begin_step()")
        self._plan = None
        s, end = plan.step_no, plan.end
        self.step_no = s
        stats = self.stats
        stats.steps += 1
        stats.busy_time += end - plan.start
        out = StepOutcome(plan)
        if self._num_decode:
            stats.itl.observe(end - self._last_end, self._num_decode)
            stats.generation_tokens += self._num_decode
        for seq in self._finish_at.pop(s, ()):
            if seq.status == Status.DECODE and seq.finish_step == s:
                self._complete(seq, end)
                out.finished.append(seq)
        for seq, n in plan.chunks:
            if seq.status != Status.PREFILL:
                continue
            seq.computed += n
            if seq.computed == seq.num_tokens:
                self._start_decode(seq, s, end, out)
        self._last_end = end
        return out

    # ---- internals ------------------------------------------------------------------
    def _make_plan(
        self, s: int, now: float, chunks: list[tuple[Sequence, int]], load_ms: float
    ) -> StepPlan | None:
        tokens = self._num_decode
        context = self._decode_base + self._num_decode * s
        for seq, n in chunks:
            tokens += n
            context += seq.computed + n
        if tokens == 0:
            self._alloc_step = s - 1
            return None
        dur = self.profile.step_seconds(tokens, context, bool(self.lora.running))
        dur += load_ms / 1000.0
        self._plan = StepPlan(s, now, now + dur, chunks, self._num_decode, tokens)
        return self._plan

    def _admit(self, budget: int, chunks: list[tuple[Sequence, int]], now: float) -> float:
        cfg, pool, lora, stats = self.cfg, self.pool, self.lora, self.stats
        bs = cfg.block_size
        waiting = self.waiting
        skipped: list[Sequence] = []
        load_ms = 0.0
        while waiting and budget > 0 and len(self.running) < cfg.max_num_seqs:
            seq = waiting.peek()
            if seq.status == Status.ABORTED:
                waiting.pop_next()
                continue
            if seq.arrival > now:  # arrived after this iteration was scheduled
                break
            if seq.lora is not None and not lora.can_run(seq.lora):
                skipped.append(waiting.pop_next())
                continue
            hits = idle = 0
            if seq.hashes:
                hits, idle = pool.lookup(seq.hashes, (seq.num_tokens - 1) // bs)
            computed = max(hits * bs, seq.kv_transferred)
            n = min(seq.num_tokens - computed, budget)
            extra = -(-(computed + n) // bs) - hits
            if extra + idle > pool.num_free:
                break
            waiting.pop_next()
            self.num_waiting -= 1
            if hits:
                seq.held = seq.hashes[:hits]
                pool.acquire(seq.held)
            seq.nblocks = seq.n_reg = hits
            seq.computed = computed
            if seq.media:
                encode = self.encoder.encode(seq.media, computed)
                stats.encoder_tokens += encode
                load_ms += encode * self.profile.encoder_ms_per_1k_tokens / 1000.0
            if seq.first_scheduled < 0:
                self._first_admission(seq, hits * bs, computed, now)
            if seq.lora is not None:
                lora.remove_waiting(seq.lora)
                if lora.activate(seq.lora):
                    load_ms += self.profile.lora_load_ms
                    stats.lora_loads += 1
            self._grow(seq, n, extra)
            seq.status = Status.PREFILL
            self.running[seq.uid] = seq
            self._prefilling[seq.uid] = seq
            chunks.append((seq, n))
            budget -= n
        if skipped:
            waiting.prepend_all(skipped)
        return load_ms

    def _first_admission(self, seq: Sequence, cached: int, computed: int, now: float) -> None:
        """Count where the prompt's KV comes from: local cache, a remote prefill, or compute."""
        stats = self.stats
        seq.first_scheduled = now
        seq.cached_tokens = cached
        stats.prefix_queries += seq.num_tokens
        stats.prefix_hits += cached
        stats.prompt_tokens_cache_hit += cached
        stats.prompt_tokens_kv_transfer += computed - cached
        stats.prompt_tokens_computed += seq.num_tokens - computed
        stats.queue_time.observe(now - seq.arrival)

    def _grow(self, seq: Sequence, n: int, extra: int) -> None:
        """Give seq the blocks for its next n tokens and publish newly filled prompt blocks."""
        self.pool.allocate(extra)
        seq.nblocks += extra
        upto = min(len(seq.hashes), (seq.computed + n) // self.cfg.block_size)
        log, run = self.kv_events, -1  # run: first block of the current run of new cache entries
        for j in range(seq.n_reg, upto):
            h = seq.hashes[j]
            if self.pool.register(h):
                seq.held.append(h)
                run = j if run < 0 else run
            elif log is not None and run >= 0:
                log.stored(seq, run, j)
                run = -1
        if log is not None and run >= 0:
            log.stored(seq, run, upto)
        seq.n_reg = max(seq.n_reg, upto)

    def _start_decode(self, seq: Sequence, s: int, end: float, out: StepOutcome) -> None:
        stats = self.stats
        stats.generation_tokens += 1
        if seq.first_token < 0:
            seq.first_token = end
            stats.ttft.observe(end - seq.arrival)
            stats.prompt_tokens += seq.prompt_len
            out.first_tokens.append(seq)
        produced = seq.out_before + 1
        if produced >= seq.max_output:
            self._complete(seq, end)
            out.finished.append(seq)
            return
        del self._prefilling[seq.uid]
        seq.status = Status.DECODE
        seq.p_eff, seq.s0 = seq.num_tokens, s
        self._residue[(seq.p_eff - s - 1) % self.cfg.block_size] += 1
        self._num_decode += 1
        self._decode_base += seq.p_eff - s
        seq.finish_step = s + seq.max_output - produced
        self._finish_at.setdefault(seq.finish_step, []).append(seq)

    def _complete(self, seq: Sequence, end: float) -> None:
        self._release(seq)
        del self.running[seq.uid]
        seq.status = Status.FINISHED
        seq.out_before = seq.max_output
        seq.finish_time = end
        self.stats.finished[seq.finish_reason] = self.stats.finished.get(seq.finish_reason, 0) + 1
        self.stats.e2e.observe(end - seq.arrival)

    def _release(self, seq: Sequence) -> None:
        """Free seq's KV blocks and batch slot (caller removes it from `running`)."""
        bs = self.cfg.block_size
        if seq.status == Status.DECODE:
            nblocks = -(-(seq.p_eff + self._alloc_step - seq.s0) // bs)
            self._residue[(seq.p_eff - seq.s0 - 1) % bs] -= 1
            self._num_decode -= 1
            self._decode_base -= seq.p_eff - seq.s0
        else:
            nblocks = seq.nblocks
            del self._prefilling[seq.uid]
        self.pool.release(nblocks - len(seq.held), seq.held)
        if seq.lora is not None:
            self.lora.deactivate(seq.lora)

    def _preempt_one(self) -> None:
        if self._by_priority:
            victim = max(self.running.values(), key=_preemption_order)
            seq = self.running.pop(victim.uid)
        else:
            _, seq = self.running.popitem()  # the newest
        seq.out_before = self.tokens_generated(seq)
        self._release(seq)
        seq.status = Status.WAITING
        seq.num_tokens = seq.prompt_len + seq.out_before
        seq.computed = seq.nblocks = seq.n_reg = seq.kv_transferred = 0
        seq.held = []
        seq.preemptions += 1
        self.waiting.prepend(seq)
        self.num_waiting += 1
        if seq.lora is not None:
            self.lora.add_waiting(seq.lora)
        stats = self.stats
        stats.num_preemptions += 1
        if stats.first_preemption_step < 0:
            stats.first_preemption_step = self.step_no + 1


def _preemption_order(seq: Sequence) -> tuple[int, float, int]:
    """Under the priority policy vLLM preempts max(running, key=(priority, arrival_time))."""
    return seq.priority, seq.arrival, seq.uid
