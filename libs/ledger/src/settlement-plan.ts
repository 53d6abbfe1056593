/**
 * Which consumer settles which partitions. Partitions are many and cheap (they only name Redis
 * hash tags and streams); consumers are few and bounded (each one long-running activity at a
 * time): consumer k of C settles every partition p with p mod C = k. Pure, no framework imports.
 */
export function ownedPartitions(consumer: number, consumers: number, partitions: number): number[] {
  if (!Number.isInteger(consumer) || consumer < 0 || consumer >= consumers) return [];
  const owned: number[] = [];
  for (let p = consumer; p < partitions; p += consumers) owned.push(p);
  return owned;
}
