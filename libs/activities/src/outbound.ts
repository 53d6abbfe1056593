import ipaddr from 'ipaddr.js';
import { promises as dns } from 'node:dns';
import * as http from 'node:http';
import * as https from 'node:https';

/**
 * Where Spillway may send webhooks (SSRF defence). By default only https to public unicast
 * addresses; `allowHttp` admits plain http and `allowedCidrs` admits ranges that are otherwise
 * refused (loopback, private, link-local, metadata…) for tests and private deployments.
 */
export interface OutboundPolicy {
  readonly allowHttp: boolean;
  readonly allowedCidrs: readonly string[];
}

/** A webhook target Spillway refuses to reach; retrying cannot change that. */
export class OutboundRefused extends Error {}

const MAX_URL_LENGTH = 2048;
type Address = ipaddr.IPv4 | ipaddr.IPv6;

const allowLists = new Map<string, [Address, number][]>();

/** The parsed allow-list; throws on a malformed CIDR (a configuration error, found at first use). */
function allowList(policy: OutboundPolicy): [Address, number][] {
  const id = policy.allowedCidrs.join(',');
  let parsed = allowLists.get(id);
  if (!parsed) {
    parsed = policy.allowedCidrs.map((cidr) => {
      try {
        return ipaddr.parseCIDR(cidr);
      } catch {
        throw new Error(`SPILLWAY_WEBHOOK_ALLOWED_CIDRS: "${cidr}" is not a CIDR range`);
      }
    });
    allowLists.set(id, parsed);
  }
  return parsed;
}

const IPV4_COMPATIBLE = ipaddr.parseCIDR('::/96');

/**
 * Why `address` may not be reached, or undefined when it may: every address that ipaddr.js does
 * not classify as public `unicast` (loopback, private, link-local incl. 169.254.169.254, unique
 * local, CGNAT, multicast, reserved, IPv4-mapped forms of these…) is refused unless allow-listed.
 */
export function addressRefusal(address: string, policy: OutboundPolicy): string | undefined {
  if (!ipaddr.isValid(address)) return `${address} is not an IP address`;
  const parsed = ipaddr.process(address);
  // ipaddr.js calls IPv4-compatible IPv6 (::/96, deprecated by RFC 4291, e.g. ::127.0.0.1) unicast;
  // it embeds an IPv4 address like the mapped, 6to4, Teredo and NAT64 forms it does classify, so it is refused too.
  const range = parsed.kind() === 'ipv6' && parsed.match(IPV4_COMPATIBLE) ? 'IPv4-compatible (::/96)' : parsed.range();
  if (range === 'unicast') return undefined;
  if (allowList(policy).some(([net, bits]) => net.kind() === parsed.kind() && parsed.match(net, bits))) return undefined;
  return `${parsed.toString()}, a ${range} address`;
}

/** `[::1]` → `::1`: URL hostnames keep IPv6 brackets. */
const bareHost = (hostname: string) => hostname.replace(/^\[(.*)\]$/, '$1');

/**
 * What is wrong with a webhook URL before any DNS: not a URL, not https (or http when allowed),
 * credentials in it, or an IP literal that may not be reached. Undefined when acceptable.
 */
export function webhookUrlProblem(url: string, policy: OutboundPolicy): string | undefined {
  if (url.length > MAX_URL_LENGTH) return `must be at most ${MAX_URL_LENGTH} characters`;
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return 'must be an absolute URL';
  }
  if (target.protocol !== 'https:' && !(target.protocol === 'http:' && policy.allowHttp))
    return policy.allowHttp ? 'must be an http(s) URL' : 'must be an https URL';
  if (target.username || target.password) return 'must not carry credentials';
  const host = bareHost(target.hostname);
  if (!host) return 'must name a host';
  if (ipaddr.isValid(host)) {
    const refusal = addressRefusal(host, policy);
    if (refusal) return `must not target ${refusal}`;
  }
  return undefined;
}

/**
 * The one address a request to `host` connects to: the literal itself, or the first DNS answer,
 * every answer checked — so a name that resolves (even partly) to a refused address is refused,
 * and the connection cannot be re-resolved elsewhere afterwards (DNS rebinding).
 */
export async function pinAddress(host: string, policy: OutboundPolicy): Promise<string> {
  const bare = bareHost(host);
  if (ipaddr.isValid(bare)) {
    const refusal = addressRefusal(bare, policy);
    if (refusal) throw new OutboundRefused(`refused: ${refusal}`);
    return bare;
  }
  const answers = await dns.lookup(bare, { all: true, verbatim: true });
  if (answers.length === 0) throw new Error(`${bare} has no address`);
  for (const { address } of answers) {
    const refusal = addressRefusal(address, policy);
    if (refusal) throw new OutboundRefused(`refused: ${bare} resolves to ${refusal}`);
  }
  return answers[0].address;
}

/**
 * POSTs `body` to `url` under `policy`: the URL is checked, the host resolved and pinned, and the
 * connection made to that address (TLS still verifies the certificate for the URL's host name).
 * Redirects are not followed. Resolves to the HTTP status; throws OutboundRefused for a refused
 * target, any other error for a network failure (worth retrying).
 */
export async function postWebhook(
  url: string,
  headers: Record<string, string>,
  body: string,
  policy: OutboundPolicy,
  timeoutMs: number,
): Promise<number> {
  const problem = webhookUrlProblem(url, policy);
  if (problem) throw new OutboundRefused(`refused: webhook_url ${problem}`);
  const target = new URL(url);
  const host = bareHost(target.hostname);
  const address = await pinAddress(host, policy);
  const secure = target.protocol === 'https:';
  const options: https.RequestOptions = {
    method: 'POST',
    host: address,
    port: target.port || (secure ? 443 : 80),
    path: `${target.pathname}${target.search}`,
    headers: { ...headers, host: target.host, 'content-length': String(Buffer.byteLength(body)) },
    signal: AbortSignal.timeout(timeoutMs),
    agent: false,
    ...(secure && !ipaddr.isValid(host) ? { servername: host } : {}),
  };
  return new Promise<number>((resolve, reject) => {
    const request = (secure ? https : http).request(options, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}
