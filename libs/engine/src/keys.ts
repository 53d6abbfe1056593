/**
 * Redis key layout. Every key of an account carries its partition's hash tag `{p<n>}`, so one
 * script call touches a single slot and runs unchanged on Redis Cluster.
 */
export function partitionOf(accountId: string, partitions: number): number {
  // FNV-1a, 32-bit: stable across processes and releases.
  let hash = 0x811c9dc5;
  for (let i = 0; i < accountId.length; i++) {
    hash ^= accountId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % partitions;
}

export const tag = (partition: number) => `{p${partition}}`;

export function accountKeys(accountId: string, partition: number) {
  const base = `sw:${tag(partition)}:a:${accountId}`;
  return {
    lots: `${base}:lots`,
    lotMeta: `${base}:lotmeta`,
    idempotency: (key: string) => `${base}:i:${key}`,
    freeTier: (feature: string) => `${base}:f:${feature}`,
    window: (feature: string, name: string) => `${base}:w:${feature}:${name}`,
    grants: `${base}:grants`,
  };
}

export const streamKey = (partition: number) => `sw:${tag(partition)}:events`;

/** Holds are found by decision id alone (commit/release), so they live at partition level. */
export const holdKey = (partition: number, decisionId: string) => `sw:${tag(partition)}:h:${decisionId}`;

/** Decision ids carry their partition so that a hold can be found from the id alone. */
export const decisionIdFor = (partition: number, uuid: string) => `dec_p${partition}_${uuid.replace(/-/g, '')}`;

export function partitionOfDecision(decisionId: string, partitions: number): number | undefined {
  const match = /^dec_p(\d+)_[0-9a-f]{32}$/.exec(decisionId);
  if (!match) return undefined;
  const partition = Number(match[1]);
  return partition < partitions ? partition : undefined;
}
