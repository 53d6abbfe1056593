import type { Cluster, Redis } from 'ioredis';
import { workerHeartbeatKey } from '@spillway/engine/keys';

/**
 * Worker liveness for /health: a running worker refreshes one Redis key per task queue every
 * second with a 5-second expiry, so the API sees within 5 s that no worker runs (crashed, killed,
 * or being restarted by the supervisor). One SET per second per worker: no cost per decision.
 */
export const WORKER_HEARTBEAT_EVERY_MS = 1000;
export const WORKER_HEARTBEAT_TTL_MS = 5000;

/** Refreshes the heartbeat while `running()` holds; returns the function that stops it. */
export function startWorkerHeartbeat(redis: Redis | Cluster, taskQueue: string, running: () => boolean): () => void {
  const key = workerHeartbeatKey(taskQueue);
  const beat = () => {
    if (running()) redis.set(key, String(process.pid), 'PX', WORKER_HEARTBEAT_TTL_MS).catch(() => undefined); // Redis down: /health shows it anyway
  };
  beat();
  const timer = setInterval(beat, WORKER_HEARTBEAT_EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** True when some worker of the task queue beat within the last WORKER_HEARTBEAT_TTL_MS. */
export async function workerAlive(redis: Redis | Cluster, taskQueue: string): Promise<boolean> {
  return (await redis.exists(workerHeartbeatKey(taskQueue))) === 1;
}
