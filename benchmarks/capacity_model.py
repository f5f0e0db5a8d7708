"""A discrete-event model of the fleet, with the service's own scheduling rules.

Pure Python (heapq), no I/O: benchmarks.capacity feeds it measured stage times
and a day of arrivals, and prints what comes out.

What it models, rule by rule:
- Fair queues (jobstore.admission): a submitted job is held in its tenant's
  list for its priority; tenants with held jobs take turns (a ring), and a job
  is sent only while fewer than the window's jobs of its priority are in
  flight (sent and not past its last stylize step: its composites hold no
  place). The pump runs at submit, when a job leaves the window, when
  a pod comes up or leaves, and on every autoscaler tick.
- Windows from live capacity (jobstore.capacity.WindowRule, the real class):
  window = clamp(per_process x live GPU processes, floor, ceiling), live
  meaning pods that are up and not leaving.
- Workers: one pod = one GPU = one process (deploy/k8s). A job is the steps
  segment -> stylize per output (the priority's GPU queue: `gpu` or
  `gpu-batch`) -> composite per output -> finalize (queue `cpu`). A process
  takes a message from `gpu` (and `cpu`, if it serves it, the older first)
  before `gpu-batch` (worker.service.safe_transport); the batch pool takes only
  `gpu-batch`. Celery's prefetch is 1 with late acks: a process holds no
  message but the one it runs. In a fleet the CPU steps run on the CPU pool,
  modelled as never short (KEDA scales it on its own queue): they add their
  seconds to the job's time in flight, not to a GPU's. In the two-worker check
  every process serves `cpu` too, as in tests/load/test_fairness.py.
- The autoscaler (KEDA + the HPA it drives), per pool, every polling interval:
  signal = held + in flight of the pool's priority; desired =
  ceil(signal / target per pod), kept within the HPA's 10% tolerance, within
  min/max; scale-up limited by its policy (pods or percent per period),
  scale-down to the highest desired count of the stabilization window and
  limited by its policy; a pool with min 0 wakes on any job and goes to zero
  only after the cooldown without one. A new pod serves after its start time
  (node, image, model load); a pod removed stops taking work, finishes its
  step (the soft shutdown) and leaves; pods cost from creation to leaving.
"""

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import count

from jobstore.capacity import WindowRule

PRIORITIES = ("interactive", "batch")
Sampler = Callable[[random.Random], float]


def fixed(seconds: float) -> Sampler:
    return lambda rng: seconds


def lognormal(mean: float, sigma: float) -> Sampler:
    """Seconds with this mean and a log-normal spread (sigma of the log)."""
    mu = math.log(mean) - sigma * sigma / 2
    return lambda rng: rng.lognormvariate(mu, sigma)


def empirical(samples: Sequence[float]) -> Sampler:
    """One of the measured samples, at random."""
    values = list(samples)
    return lambda rng: rng.choice(values)


@dataclass(frozen=True)
class StageTimes:
    segment: Sampler  # per photo, on a GPU process
    stylize: Sampler  # per output, on a GPU process (preview, optimization, uploads)
    composite: Sampler  # per output, CPU
    finalize: Sampler  # per job, CPU
    step_overhead: float = 0.0  # a process's own time per step beyond the step (ack, records)
    dispatch: float = 0.0  # seconds from a job's send to its first message being visible
    cpu_on_gpu_processes: bool = False  # the GPU processes also serve `cpu` (one-box setup)


@dataclass(frozen=True)
class Autoscale:
    target_per_pod: float
    min_replicas: int
    max_replicas: int
    polling_s: float = 15.0
    cooldown_s: float = 300.0  # KEDA: to zero only after this long without a job
    down_stabilization_s: float = 300.0
    up_pods: int | None = None  # scale-up policy: pods per period, or
    up_percent: float | None = None  # percent per period (neither: no limit)
    up_period_s: float = 60.0
    down_pods: int = 1
    down_period_s: float = 120.0
    tolerance: float = 0.1


@dataclass(frozen=True)
class Pool:
    name: str
    priority: str  # whose signal scales it
    takes: tuple[str, ...]  # priorities it takes, in order: interactive first
    initial: int
    start_s: float  # a new pod's start: node, image pull, model load
    autoscale: Autoscale | None = None  # None: fixed at `initial`


@dataclass(frozen=True)
class Fleet:
    pools: tuple[Pool, ...]
    windows: Mapping[str, WindowRule]
    stages: StageTimes


@dataclass(frozen=True)
class Arrival:
    time: float
    tenant: str
    priority: str
    outputs: int


@dataclass(eq=False)
class Job:
    id: int
    tenant: str
    priority: str
    outputs: int
    created: float
    sent: float = math.nan
    started: float = math.nan
    finished: float = math.nan
    segments: int = 0  # steps run: a job is served once, each step once
    stylized: int = 0
    composited: int = 0
    cpu_end: float = 0.0  # fleet: when the last composite ends

    @property
    def wait(self) -> float:
        return self.started - self.created


@dataclass(eq=False)
class Pod:
    id: int
    pool: Pool
    created: float
    state: str = "starting"  # starting, up, leaving, gone
    busy: bool = False
    busy_s: float = 0.0
    left: float = math.nan


@dataclass
class Sample:
    time: float
    signal: dict[str, int]  # held + in flight per priority
    replicas: dict[str, int]  # per pool, pods not leaving
    up: dict[str, int]  # per pool, pods serving


@dataclass
class Result:
    jobs: list[Job]
    pods: list[Pod]
    samples: list[Sample]
    end: float
    window_breaches: int  # sends that took a priority past its window (must be 0)
    max_inflight: dict[str, int]
    max_window: dict[str, int]

    def waits(self, priority: str, tenant: str | None = None) -> list[float]:
        return sorted(j.wait for j in self.jobs if j.priority == priority
                      and (tenant is None or j.tenant == tenant))  # fmt: skip

    def gpu_seconds(self) -> float:
        return sum((self.end if math.isnan(p.left) else p.left) - p.created for p in self.pods)

    def peak_replicas(self) -> int:
        return max((sum(s.replicas.values()) for s in self.samples), default=0)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0-1) by nearest rank, as tests/load/test_fairness.py takes it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# Event kinds, in the heap as (time, sequence, kind, object).
_ARRIVE, _VISIBLE, _STEP_DONE, _JOB_END, _POD_UP, _TICK, _SAMPLE = range(7)
_SEGMENT, _STYLIZE, _COMPOSITE, _FINALIZE = range(4)


class Simulation:
    def __init__(self, fleet: Fleet, seed: int = 0, sample_every_s: float = 60.0) -> None:
        self.fleet, self.stages = fleet, fleet.stages
        self.rng = random.Random(seed)
        self.now = 0.0
        self.events: list[tuple[float, int, int, object]] = []
        self.seq = count()
        self.held = {p: dict[str, deque[Job]]() for p in PRIORITIES}
        self.ring = {p: deque[str]() for p in PRIORITIES}
        self.held_n = dict.fromkeys(PRIORITIES, 0)
        self.inflight = dict.fromkeys(PRIORITIES, 0)
        # Celery's queues: (job, step kind, order of sending).
        self.queues: dict[str, deque[tuple[Job, int, int]]] = {
            q: deque() for q in ("interactive", "batch", "cpu")
        }
        self.pods: list[Pod] = []
        self.idle = {pool.name: dict[int, Pod]() for pool in fleet.pools}
        self.running: dict[int, tuple[Job, int, int]] = {}
        self.order = count()
        self.jobs: list[Job] = []
        self.samples: list[Sample] = []
        self.sample_every = sample_every_s
        self.breaches = 0
        self.max_inflight = dict.fromkeys(PRIORITIES, 0)
        self.max_window = dict.fromkeys(PRIORITIES, 0)
        self.scaler = {pool.name: _ScalerState() for pool in fleet.pools}
        self.live = 0
        for pool in fleet.pools:
            for _ in range(pool.initial):
                self._pod_up(self._new_pod(pool))

    # -- running ---------------------------------------------------------------
    def run(self, arrivals: Iterable[Arrival], until: float | None = None) -> Result:
        """Every arrival, then until the last job ends (or `until`)."""
        for a in arrivals:
            job = Job(len(self.jobs), a.tenant, a.priority, a.outputs, a.time)
            self.jobs.append(job)
            self._at(a.time, _ARRIVE, job)
        last_arrival = max((j.created for j in self.jobs), default=0.0)
        if any(pool.autoscale for pool in self.fleet.pools):
            self._at(0.0, _TICK, None)
        self._at(0.0, _SAMPLE, None)
        open_jobs = len(self.jobs)
        while self.events:
            t, _, kind, obj = heapq.heappop(self.events)
            if until is not None and t > until:
                break
            if open_jobs == 0 and t > last_arrival and kind in (_TICK, _SAMPLE):
                break
            self.now = t
            if kind == _ARRIVE:
                self._hold(obj)  # type: ignore[arg-type]
            elif kind == _VISIBLE:
                self._enqueue(*obj)  # type: ignore[misc]
            elif kind == _STEP_DONE:
                self._step_done(obj)  # type: ignore[arg-type]
            elif kind == _JOB_END:
                open_jobs -= 1
                self._job_end(obj)  # type: ignore[arg-type]
            elif kind == _POD_UP:
                self._pod_up(obj)  # type: ignore[arg-type]
            elif kind == _TICK:
                self._tick()
            elif kind == _SAMPLE:
                self._sample()
                self._at(t + self.sample_every, _SAMPLE, None)
        if open_jobs == 0:  # a job's last step may end after the last tick
            self.now = max([self.now, *(j.finished for j in self.jobs)])
        return Result(self.jobs, self.pods, self.samples, self.now, self.breaches,
                      self.max_inflight, self.max_window)  # fmt: skip

    def _at(self, t: float, kind: int, obj: object) -> None:
        heapq.heappush(self.events, (t, next(self.seq), kind, obj))

    # -- fair queues -------------------------------------------------------------
    def _hold(self, job: Job) -> None:
        pending = self.held[job.priority].setdefault(job.tenant, deque())
        pending.append(job)
        if len(pending) == 1:
            self.ring[job.priority].append(job.tenant)
        self.held_n[job.priority] += 1
        self._pump()

    def window(self, priority: str) -> int:
        return self.fleet.windows[priority].window(self.live)

    def _pump(self) -> None:
        for priority in PRIORITIES:
            ring, window = self.ring[priority], self.window(priority)
            self.max_window[priority] = max(self.max_window[priority], window)
            while ring and self.inflight[priority] < window:
                tenant = ring.popleft()
                pending = self.held[priority][tenant]
                job = pending.popleft()
                if pending:
                    ring.append(tenant)
                self.held_n[priority] -= 1
                self.inflight[priority] += 1
                self.breaches += self.inflight[priority] > window
                self.max_inflight[priority] = max(self.max_inflight[priority],
                                                  self.inflight[priority])  # fmt: skip
                job.sent = self.now
                self._at(self.now + self.stages.dispatch, _VISIBLE, (job, _SEGMENT))

    # -- workers -----------------------------------------------------------------
    def _enqueue(self, job: Job, step: int) -> None:
        name = "cpu" if step in (_COMPOSITE, _FINALIZE) else job.priority
        self.queues[name].append((job, step, next(self.order)))
        # An idle process that takes it starts at once; a pool whose first
        # queue it is before one that takes it only when idle.
        pools = sorted(self.fleet.pools, key=lambda pool: pool.takes[0] != name)
        for pool in pools:
            takes = name in pool.takes or (name == "cpu" and self.stages.cpu_on_gpu_processes)
            if takes and self.idle[pool.name]:
                self._take(self._pop_idle(pool))
                return

    def _pop_idle(self, pool: Pool) -> Pod:
        idle = self.idle[pool.name]
        return idle.pop(next(iter(idle)))

    def _next_message(self, pod: Pod) -> tuple[Job, int, int] | None:
        first = self.queues["interactive"] if "interactive" in pod.pool.takes else None
        cpu = self.queues["cpu"] if self.stages.cpu_on_gpu_processes else None
        if first and cpu:  # round robin over gpu and cpu: about the older first
            return (first if first[0][2] < cpu[0][2] else cpu).popleft()
        for queue in (first, cpu):
            if queue:
                return queue.popleft()
        if "batch" in pod.pool.takes and self.queues["batch"]:
            return self.queues["batch"].popleft()
        return None

    def _take(self, pod: Pod) -> None:
        message = self._next_message(pod)
        if message is None:
            self.idle[pod.pool.name][pod.id] = pod
            return
        job, step, _ = message
        s = self.stages
        if step == _SEGMENT:
            seconds = s.segment(self.rng)
            if math.isnan(job.started):
                job.started = self.now
        elif step == _STYLIZE:
            seconds = s.stylize(self.rng)
        elif step == _COMPOSITE:
            seconds = s.composite(self.rng)
        else:
            seconds = s.finalize(self.rng)
        seconds += s.step_overhead
        pod.busy, pod.busy_s = True, pod.busy_s + seconds
        self.running[pod.id] = message
        self._at(self.now + seconds, _STEP_DONE, pod)

    def _step_done(self, pod: Pod) -> None:
        job, step, _ = self.running.pop(pod.id)
        pod.busy = False
        if step == _SEGMENT:
            job.segments += 1
            for _ in range(job.outputs):
                self._enqueue(job, _STYLIZE)
        elif step == _STYLIZE:
            job.stylized += 1
            if job.stylized == job.outputs:  # past its GPU steps: out of the window
                self.inflight[job.priority] -= 1
                self._pump()
            if self.stages.cpu_on_gpu_processes:
                self._enqueue(job, _COMPOSITE)
            else:  # the CPU pool: composites side by side, then the finalize
                job.cpu_end = max(job.cpu_end, self.now + self.stages.composite(self.rng))
                if job.stylized == job.outputs:
                    end = job.cpu_end + self.stages.finalize(self.rng) + self.stages.step_overhead
                    self._at(end, _JOB_END, job)
        elif step == _COMPOSITE:
            job.composited += 1
            if job.composited == job.outputs:
                self._enqueue(job, _FINALIZE)
        else:
            self._at(self.now, _JOB_END, job)
        if pod.state == "leaving":
            self._gone(pod)
        else:
            self._take(pod)

    def _job_end(self, job: Job) -> None:
        job.finished = self.now

    # -- pods ----------------------------------------------------------------------
    def _new_pod(self, pool: Pool) -> Pod:
        pod = Pod(len(self.pods), pool, self.now)
        self.pods.append(pod)
        return pod

    def _pod_up(self, pod: Pod) -> None:
        if pod.state != "starting":
            return  # removed while starting
        pod.state = "up"
        self.live += 1
        self._take(pod)
        self._pump()

    def _gone(self, pod: Pod) -> None:
        pod.state, pod.left = "gone", self.now

    def _remove(self, pool: Pool, n: int) -> None:
        """Starting pods first, then idle ones, then busy ones (which finish their step)."""
        mine = [p for p in self.pods if p.pool is pool and p.state in ("starting", "up")]
        mine.sort(key=lambda p: (p.state != "starting", p.busy, -p.created))
        for pod in mine[:n]:
            if pod.state == "up":
                self.live -= 1
            if pod.state == "starting" or not pod.busy:
                self.idle[pool.name].pop(pod.id, None)
                self._gone(pod)
            else:
                pod.state = "leaving"
        self._pump()

    def replicas(self, pool: Pool) -> int:
        return sum(1 for p in self.pods if p.pool is pool and p.state in ("starting", "up"))

    # -- autoscaler ------------------------------------------------------------------
    def signal(self, priority: str) -> int:
        return self.held_n[priority] + self.inflight[priority]

    def _tick(self) -> None:
        polling = min(p.autoscale.polling_s for p in self.fleet.pools if p.autoscale)
        for pool in self.fleet.pools:
            if pool.autoscale:
                self._scale(pool, pool.autoscale, self.scaler[pool.name])
        self._pump()
        self._at(self.now + polling, _TICK, None)

    def _scale(self, pool: Pool, a: Autoscale, st: "_ScalerState") -> None:
        now, metric = self.now, self.signal(pool.priority)
        current = self.replicas(pool)
        if metric > 0:
            st.last_active = now
        if a.min_replicas == 0 and current == 0:  # KEDA: activation wakes a pool at zero
            if metric > 0:
                self._add(pool, 1, st)
            return
        if a.min_replicas == 0 and metric == 0 and now - st.last_active >= a.cooldown_s:
            self._remove(pool, current)  # KEDA: to zero after the cooldown
            st.history.clear()
            return
        ratio = metric / (a.target_per_pod * current) if current else math.inf
        raw = current if abs(ratio - 1) <= a.tolerance else math.ceil(metric / a.target_per_pod)
        raw = max(max(a.min_replicas, 1), min(a.max_replicas, raw))
        st.history.append((now, raw))
        while st.history and st.history[0][0] < now - a.down_stabilization_s:
            st.history.popleft()
        if raw > current:
            added = sum(n for t, n in st.changes if t > now - a.up_period_s and n > 0)
            limit = raw
            if a.up_pods is not None:
                limit = current + max(0, a.up_pods - added)
            elif a.up_percent is not None:
                base = current - added
                limit = max(current, math.ceil(base * (1 + a.up_percent / 100)))
            self._add(pool, min(raw, limit) - current, st)
        else:
            desired = max(n for _, n in st.history)
            if desired < current:
                removed = -sum(n for t, n in st.changes if t > now - a.down_period_s and n < 0)
                n = min(current - desired, max(0, a.down_pods - removed))
                if n:
                    st.changes.append((now, -n))
                    self._remove(pool, n)

    def _add(self, pool: Pool, n: int, st: "_ScalerState") -> None:
        if n <= 0:
            return
        st.changes.append((self.now, n))
        for _ in range(n):
            self._at(self.now + pool.start_s, _POD_UP, self._new_pod(pool))

    def _sample(self) -> None:
        self.samples.append(Sample(
            self.now,
            {p: self.signal(p) for p in PRIORITIES},
            {pool.name: self.replicas(pool) for pool in self.fleet.pools},
            {pool.name: sum(1 for p in self.pods if p.pool is pool and p.state == "up")
             for pool in self.fleet.pools},
        ))  # fmt: skip


@dataclass
class _ScalerState:
    last_active: float = 0.0
    history: deque[tuple[float, int]] = field(default_factory=deque)  # (time, desired)
    changes: list[tuple[float, int]] = field(default_factory=list)  # (time, +added / -removed)


def simulate(fleet: Fleet, arrivals: Iterable[Arrival], seed: int = 0,
             sample_every_s: float = 60.0, until: float | None = None) -> Result:  # fmt: skip
    return Simulation(fleet, seed, sample_every_s).run(arrivals, until)


# -- a day of arrivals ---------------------------------------------------------------
DAY = 86_400.0


@dataclass(frozen=True)
class Tenant:
    name: str
    priority: str
    share: float  # of the day's photos
    chunk_s: float = 0.0  # batch back-fills submit in chunks this far apart (0: one by one)


def daily_shape(peak_over_mean: float, peak_hour: float = 20.0) -> Callable[[float], float]:
    """A smooth daily curve with mean 1 and its peak `peak_over_mean` at
    `peak_hour` (a von Mises bump: exp(k cos(phase)) / I0(k))."""

    def i0(k: float) -> float:
        return sum((k / 2) ** (2 * n) / math.factorial(n) ** 2 for n in range(40))

    lo, hi = 1e-6, 20.0
    for _ in range(100):  # e^k / I0(k) grows with k: bisection
        k = (lo + hi) / 2
        lo, hi = (k, hi) if math.exp(k) / i0(k) < peak_over_mean else (lo, k)
    norm = i0(k)
    return lambda t: math.exp(k * math.cos(2 * math.pi * (t / DAY - peak_hour / 24))) / norm


def day_of_arrivals(photos_per_day: float, tenants: Sequence[Tenant],
                    outputs: Sequence[tuple[int, float]], peak_over_mean: float = 3.0,
                    seed: int = 0) -> list[Arrival]:  # fmt: skip
    """Every tenant follows the daily curve with its share of the photos: a
    Poisson stream (thinned), or chunks every `chunk_s` for back-fills; each job
    1-4 outputs with the given probabilities."""
    rng = random.Random(seed)
    shape = daily_shape(peak_over_mean)
    mean_rate = photos_per_day / DAY
    sizes, weights = [n for n, _ in outputs], [w for _, w in outputs]
    arrivals = []
    for tenant in tenants:
        rate = mean_rate * tenant.share
        if tenant.chunk_s:
            carry, t = 0.0, 0.0
            while t < DAY:
                carry += rate * shape(t + tenant.chunk_s / 2) * tenant.chunk_s
                n, carry = int(carry), carry - int(carry)
                arrivals += [Arrival(t, tenant.name, tenant.priority, 0) for _ in range(n)]
                t += tenant.chunk_s
            continue
        top, t = rate * peak_over_mean * 1.001, 0.0
        while True:
            t += rng.expovariate(top)
            if t >= DAY:
                break
            if rng.random() * top <= rate * shape(t):
                arrivals.append(Arrival(t, tenant.name, tenant.priority, 0))
    arrivals.sort(key=lambda a: a.time)
    drawn = rng.choices(sizes, weights, k=len(arrivals))
    return [Arrival(a.time, a.tenant, a.priority, n) for a, n in zip(arrivals, drawn, strict=True)]
