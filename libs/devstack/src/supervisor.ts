import { log as rootLog } from '@spillway/config/log';
import { ManagedProcess, launch, signalGroup, stopProcesses } from './services';

const log = rootLog.child({ component: 'supervisor' });

/** When and how often a crashed process is started again. */
export interface RestartPolicy {
  /** Delay before the first restart, ms; doubles per consecutive crash. */
  readonly initialMs: number;
  /** Upper bound of the delay, ms. */
  readonly maxMs: number;
  /** Consecutive crashes tolerated before giving up. */
  readonly limit: number;
  /** Uptime, ms, after which a process counts as healthy again (its crash count resets). */
  readonly stableMs: number;
}

/** Delay before the `attempt`-th consecutive restart (1-based): initialMs·2^(attempt−1), at most maxMs. */
export function restartDelayMs(attempt: number, policy: Pick<RestartPolicy, 'initialMs' | 'maxMs'>): number {
  if (!Number.isInteger(attempt) || attempt < 1) throw new RangeError(`attempt must be a positive integer, got ${attempt}`);
  // 2^30 already exceeds any sane maxMs; capping the exponent keeps the product finite.
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt - 1, 30));
}

export type ProcessState = 'running' | 'restarting' | 'failed' | 'stopped';

/** What the supervisor knows of one process (written to `<data dir>/stack.json`). */
export interface ProcessStatus {
  name: string;
  pid: number | null;
  state: ProcessState;
  /** Restarts since the stack started. */
  restarts: number;
  started_at: string;
  last_exit: { code: number | null; signal: string | null; at: string } | null;
}

interface Entry {
  current: ManagedProcess;
  startedAt: number;
  consecutive: number;
  status: ProcessStatus;
  timer?: NodeJS.Timeout;
}

/**
 * Keeps the processes of the embedded stack running: a process that exits without being asked
 * to is started again after an exponential backoff, with one JSON log line per restart naming
 * the process, its exit code or signal and the delay. Bounded: after `limit` consecutive crashes
 * (a crash counts as consecutive when the process ran less than `stableMs`) the supervisor gives
 * up on that process, logs why, and leaves the others running.
 */
export class Supervisor {
  private readonly entries: Entry[] = [];
  private stopping = false;

  /** `onChange` runs after every state change (start, exit, restart, give-up, stop). */
  constructor(
    private readonly policy: RestartPolicy,
    private readonly onChange: (statuses: ProcessStatus[]) => void = () => undefined,
  ) {}

  /** Takes over a started process: from now on a crash restarts it. */
  supervise(managed: ManagedProcess): void {
    const entry: Entry = {
      current: managed,
      startedAt: Date.now(),
      consecutive: 0,
      status: {
        name: managed.name,
        pid: managed.child.pid ?? null,
        state: 'running',
        restarts: 0,
        started_at: new Date().toISOString(),
        last_exit: null,
      },
    };
    this.entries.push(entry);
    this.watch(entry);
    this.changed();
  }

  /** Kills every supervised process group at once, synchronously: the last resort on exit. */
  killAll(): void {
    this.stopping = true;
    for (const entry of this.entries) signalGroup(entry.current, 'SIGKILL');
  }

  statuses(): ProcessStatus[] {
    return this.entries.map((e) => ({ ...e.status }));
  }

  /**
   * Stops every supervised process one after the other, last started first (the API, then the
   * worker while Temporal can still take its last completions, then Temporal, Redis, PostgreSQL):
   * SIGTERM, then SIGKILL after `graceMs` each.
   */
  async stop(graceMs = 8000): Promise<void> {
    this.stopping = true;
    for (const entry of this.entries) clearTimeout(entry.timer);
    for (const entry of [...this.entries].reverse()) await stopProcesses([entry.current], graceMs);
    for (const entry of this.entries) entry.status = { ...entry.status, state: 'stopped', pid: null };
    this.changed();
  }

  private watch(entry: Entry): void {
    const { child } = entry.current;
    let handled = false;
    const exited = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
      if (handled) return;
      handled = true;
      this.exited(entry, code, signal, error);
    };
    child.once('exit', (code, signal) => exited(code, signal));
    // A process that cannot be spawned at all (missing binary) emits only 'error'.
    child.once('error', (error) => {
      if (child.pid === undefined) exited(null, null, error);
    });
  }

  private exited(entry: Entry, code: number | null, signal: NodeJS.Signals | null, error?: Error): void {
    if (this.stopping) return;
    const { name } = entry.current;
    // What the process left behind in its group (PostgreSQL backends, runuser's child) would
    // hold the port or the data directory and make the restart fail. (An error means it never started.)
    if (!error) signalGroup(entry.current, 'SIGKILL');
    const uptimeMs = Date.now() - entry.startedAt;
    entry.consecutive = uptimeMs >= this.policy.stableMs ? 1 : entry.consecutive + 1;
    const lastExit = { code, signal, at: new Date().toISOString() };
    const fields = {
      process: name,
      pid: entry.status.pid,
      exit_code: code,
      signal,
      uptime_ms: uptimeMs,
      consecutive_crashes: entry.consecutive,
      ...(error ? { error: error.message } : {}),
    };
    if (entry.consecutive > this.policy.limit) {
      entry.status = { ...entry.status, state: 'failed', pid: null, last_exit: lastExit };
      log.error(
        { ...fields, limit: this.policy.limit },
        `supervisor: ${name} crashed ${entry.consecutive} times in a row; giving up on it (the other processes keep running; see its log)`,
      );
      this.changed();
      return;
    }
    const delay = restartDelayMs(entry.consecutive, this.policy);
    entry.status = { ...entry.status, state: 'restarting', pid: null, last_exit: lastExit };
    log.warn({ ...fields, next_delay_ms: delay }, `supervisor: ${name} exited; restarting in ${delay} ms`);
    this.changed();
    entry.timer = setTimeout(() => this.restart(entry), delay);
  }

  private restart(entry: Entry): void {
    if (this.stopping) return;
    entry.startedAt = Date.now();
    try {
      entry.current = launch(entry.current.spec);
    } catch (error) {
      this.exited(entry, null, null, error as Error);
      return;
    }
    entry.status = {
      ...entry.status,
      state: 'running',
      pid: entry.current.child.pid ?? null,
      restarts: entry.status.restarts + 1,
      started_at: new Date().toISOString(),
    };
    log.info(
      { process: entry.current.name, pid: entry.status.pid, restarts: entry.status.restarts },
      `supervisor: ${entry.current.name} restarted`,
    );
    this.watch(entry);
    this.changed();
  }

  private changed(): void {
    try {
      this.onChange(this.statuses());
    } catch (error) {
      log.warn({ err: error }, 'supervisor: could not record the process states');
    }
  }
}
