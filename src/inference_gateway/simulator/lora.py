"""LoRA adapter bookkeeping like vLLM's: registered adapters, a CPU LRU cache of
max_cpu_loras, and at most max_loras distinct adapters among running requests."""

from __future__ import annotations

from collections import OrderedDict


class LoraManager:
    def __init__(self, max_loras: int, max_cpu_loras: int) -> None:
        self.max_loras = max_loras
        self.max_cpu_loras = max_cpu_loras
        self.registered: dict[str, str] = {}
        self._cpu: OrderedDict[str, None] = OrderedDict()
        self.running: dict[str, int] = {}
        self.waiting: dict[str, int] = {}

    def register(self, name: str, path: str = "") -> bool:
        if name in self.registered:
            return False
        self.registered[name] = path or f"/sim/loras/{name}"
        if len(self._cpu) < self.max_cpu_loras:
            self._cpu[name] = None
        return True

    def unregister(self, name: str) -> bool:
        if self.registered.pop(name, None) is None:
            return False
        self._cpu.pop(name, None)
        return True

    def can_run(self, name: str) -> bool:
        return name in self.running or len(self.running) < self.max_loras

    def activate(self, name: str) -> bool:
        """A request for `name` starts running. True if the adapter had to be loaded
        into the CPU cache first (costs the profile's lora_load_ms)."""
        self.running[name] = self.running.get(name, 0) + 1
        if name in self._cpu:
            self._cpu.move_to_end(name)
            return False
        self._cpu[name] = None
        while len(self._cpu) > self.max_cpu_loras:
            victim = next((n for n in self._cpu if n not in self.running), None)
            if victim is None:
                break
            del self._cpu[victim]
        return True

    def deactivate(self, name: str) -> None:
        left = self.running[name] - 1
        if left:
            self.running[name] = left
        else:
            del self.running[name]

    def add_waiting(self, name: str) -> None:
        self.waiting[name] = self.waiting.get(name, 0) + 1

    def remove_waiting(self, name: str) -> None:
        left = self.waiting[name] - 1
        if left:
            self.waiting[name] = left
        else:
            del self.waiting[name]
