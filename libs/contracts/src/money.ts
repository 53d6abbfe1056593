/**
 * Credits are exact: integer micro-credits (bigint) inside, decimal strings (up to 6 places)
 * outside. No floating point ever touches an amount.
 */
export const MICROS_PER_CREDIT = 1_000_000n;

/** Largest amount the Redis script can hold exactly (Lua numbers are IEEE doubles). */
export const MAX_MICROS = BigInt(Number.MAX_SAFE_INTEGER);

const DECIMAL = /^(-)?(\d{1,16})(?:\.(\d{1,6}))?$/;

/** Parses "2.5" into 2_500_000n; returns undefined for anything that is not an exact decimal. */
export function parseCredits(text: unknown, options: { signed?: boolean } = {}): bigint | undefined {
  if (typeof text !== 'string') return undefined;
  const match = DECIMAL.exec(text.trim());
  if (!match) return undefined;
  const [, minus, whole, fraction = ''] = match;
  if (minus && !options.signed) return undefined;
  const micros = BigInt(whole) * MICROS_PER_CREDIT + BigInt(fraction.padEnd(6, '0'));
  if (micros > MAX_MICROS) return undefined;
  return minus ? -micros : micros;
}

/** Formats micro-credits as a decimal string with exactly six places: 2_500_000n → "2.500000". */
export function formatCredits(micros: bigint): string {
  const negative = micros < 0n;
  const magnitude = negative ? -micros : micros;
  const whole = magnitude / MICROS_PER_CREDIT;
  const fraction = (magnitude % MICROS_PER_CREDIT).toString().padStart(6, '0');
  return `${negative ? '-' : ''}${whole}.${fraction}`;
}
